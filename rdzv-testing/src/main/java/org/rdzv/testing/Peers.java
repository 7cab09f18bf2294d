package org.rdzv.testing;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * Real peers that tests need: PyTorch 1.13 under {@code /usr/bin/python3}, python-etcd, the etcd
 * server binary.
 *
 * <p>Where a peer is missing, {@code require*} skips the test with a message saying what to install
 * — unless {@code CI=true}, where a missing peer fails the test: CI must have installed it.
 */
public final class Peers {
  /** The Debian interpreter that sees python3-torch (the first python3 on PATH may not). */
  public static final String PYTHON =
      System.getenv().getOrDefault("RDZV_TEST_PYTHON", "/usr/bin/python3");

  private static final ConcurrentHashMap<String, Boolean> PROBES = new ConcurrentHashMap<>();

  private Peers() {}

  /** Whether this run is CI, where every peer is required. */
  public static boolean isCi() {
    return "true".equalsIgnoreCase(System.getenv("CI"));
  }

  /** Skips (or, on CI, fails) unless PyTorch 1.13 imports under {@link #PYTHON}. */
  public static void requireTorch() {
    require(
        "torch",
        () -> pythonImports("torch"),
        "PyTorch is not importable by " + PYTHON + " (apt-get install python3-torch)");
  }

  /** Skips (or, on CI, fails) unless python-etcd imports under {@link #PYTHON}. */
  public static void requirePythonEtcd() {
    require(
        "etcd-py",
        () -> pythonImports("etcd"),
        "python-etcd is not importable by " + PYTHON + " (apt-get install python3-etcd)");
  }

  /** Skips (or, on CI, fails) unless the etcd server binary exists. */
  public static void requireEtcdServer() {
    require(
        "etcd",
        () -> etcdBinary() != null,
        "the etcd server is not installed (apt-get install etcd-server etcd-client)");
  }

  /** The etcd server binary, or {@code null}. */
  public static Path etcdBinary() {
    for (String candidate :
        new String[] {System.getenv("RDZV_TEST_ETCD"), "/usr/bin/etcd", "/usr/local/bin/etcd"}) {
      if (candidate != null && Files.isExecutable(Path.of(candidate))) {
        return Path.of(candidate);
      }
    }
    return null;
  }

  private static void require(
      String name, java.util.function.BooleanSupplier probe, String message) {
    boolean present = PROBES.computeIfAbsent(name, n -> probe.getAsBoolean());
    if (present) {
      return;
    }
    if (isCi()) {
      throw new AssertionError("required on CI (CI=true): " + message);
    }
    Assumptions.abort("skipped: " + message);
  }

  private static boolean pythonImports(String module) {
    if (!Files.isExecutable(Path.of(PYTHON))) {
      return false;
    }
    try {
      Process p =
          new ProcessBuilder(PYTHON, "-c", "import " + module)
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .start();
      if (!p.waitFor(60, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        return false;
      }
      return p.exitValue() == 0;
    } catch (java.io.IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }
}
