package org.rdzv.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * The real PyTorch versions tests run against as peers, for {@code @EnumSource(Torch.class)}.
 *
 * <ul>
 *   <li>{@link #V1_13}: Debian 12's {@code python3-torch} 1.13.1 under {@code /usr/bin/python3}
 *       ({@code RDZV_TEST_PYTHON} overrides it); torchrun through a wrapper that works around its
 *       Python 3.11 crash at start.
 *   <li>{@link #V2_6}: Debian 13's {@code python3-torch} 2.6 in the root that {@code
 *       .ci/torch2-peer.sh} builds ({@code RDZV_TEST_TORCH2}, default {@code /opt/torch2-peer}),
 *       entered through its {@code enter} script: same loopback, same {@code /tmp} and working
 *       directory, and the command keeps its pid (every step execs), so a test that kills the
 *       process kills PyTorch itself.
 * </ul>
 *
 * <p>{@link #require()} skips the test where the version is missing, with a message saying how to
 * get it, and fails it when {@code CI=true}.
 */
public enum Torch {
  V1_13("1.13") {
    @Override
    public List<String> python() {
      return List.of(Peers.PYTHON);
    }

    @Override
    public List<String> torchrun() {
      List<String> command = new ArrayList<>(python());
      command.add(resourceFile("torchrun113.py").toString());
      return command;
    }

    @Override
    String missing() {
      return "PyTorch 1.13 is not importable by "
          + Peers.PYTHON
          + " (apt-get install python3-torch)";
    }
  },
  V2_6("2.6") {
    @Override
    public List<String> python() {
      return List.of(enter().toString(), "python3");
    }

    @Override
    public List<String> torchrun() {
      return List.of(enter().toString(), "torchrun");
    }

    @Override
    String missing() {
      return "PyTorch 2.6 is not available at "
          + root()
          + " (build it with .ci/torch2-peer.sh "
          + root()
          + ", or set RDZV_TEST_TORCH2 to such a root)";
    }
  };

  private static final ConcurrentHashMap<Torch, Boolean> PRESENT = new ConcurrentHashMap<>();
  private static final ConcurrentHashMap<String, Path> RESOURCES = new ConcurrentHashMap<>();

  private final String version;

  Torch(String version) {
    this.version = version;
  }

  /** {@code 1.13} or {@code 2.6}. */
  public String version() {
    return version;
  }

  /** Whether this is a 2.x PyTorch (2.x agent protocol, store dialects and state encoding). */
  public boolean is2x() {
    return this != V1_13;
  }

  /** The command that starts this version's Python interpreter (append {@code -u script args}). */
  public abstract List<String> python();

  /** The command that starts this version's torchrun (append its flags). */
  public abstract List<String> torchrun();

  abstract String missing();

  /** Skips (or, on CI, fails) unless this PyTorch imports. */
  public void require() {
    if (PRESENT.computeIfAbsent(this, Torch::probe)) {
      return;
    }
    if (Peers.isCi()) {
      throw new AssertionError("required on CI (CI=true): " + missing());
    }
    Assumptions.abort("skipped: " + missing());
  }

  /** The root of the PyTorch 2.6 peer. */
  public static Path root() {
    String dir = System.getenv("RDZV_TEST_TORCH2");
    return Path.of(dir == null || dir.isBlank() ? "/opt/torch2-peer" : dir);
  }

  private static Path enter() {
    return root().resolve("enter");
  }

  @Override
  public String toString() {
    return "torch " + version;
  }

  private boolean probe() {
    List<String> command = new ArrayList<>();
    try {
      command.addAll(python());
    } catch (RuntimeException e) {
      return false;
    }
    if (!Files.isExecutable(Path.of(command.get(0)))) {
      return false;
    }
    command.add("-c");
    command.add(
        "import torch, sys; sys.exit(0 if torch.__version__.startswith('" + version + "') else 3)");
    try {
      Process p =
          new ProcessBuilder(command)
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .start();
      if (!p.waitFor(120, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        return false;
      }
      return p.exitValue() == 0;
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /** A resource of this package copied once to a temporary file (visible inside the 2.6 root). */
  static Path resourceFile(String name) {
    return RESOURCES.computeIfAbsent(
        name,
        n -> {
          try (InputStream in = Torch.class.getResourceAsStream(n)) {
            if (in == null) {
              throw new IllegalArgumentException("no resource " + n);
            }
            Path file = Files.createTempFile("rdzv-", "-" + n);
            Files.write(file, in.readAllBytes());
            file.toFile().deleteOnExit();
            return file;
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        });
  }
}
