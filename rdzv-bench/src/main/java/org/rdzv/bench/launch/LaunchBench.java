package org.rdzv.bench.launch;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.rdzv.testing.Torch;

/**
 * The engine of {@code rdzv bench launch}: wall time of a whole standalone launch (start,
 * rendezvous, N workers running {@code true}, exit) by {@code bin/rdzv run}, by torchrun 1.13 and
 * by torchrun 2.6 (in its Debian 13 root, {@code .ci/torch2-peer.sh}), alternating in the same run.
 * Prints the medians and rdzv's ratio to each torchrun.
 */
public final class LaunchBench {
  private LaunchBench() {}

  /**
   * What to run.
   *
   * @param runs timed launches of each, at least 1
   * @param warmup untimed launches of each first
   * @param nproc workers per launch, at least 1
   * @param rdzv the rdzv launcher script, or {@code null} for {@code bin/rdzv} of this installation
   * @param torchrun the torchrun 1.13 wrapper script, or {@code null} for the one rdzv-testing
   *     ships (as {@code shared/tools/torchrun_py311.py})
   * @param python the interpreter that imports PyTorch 1.13
   * @param torch2 the root holding PyTorch 2.6 ({@code DIR/enter torchrun} runs its torchrun)
   * @param noPytorch time rdzv only
   */
  public record Options(
      int runs,
      int warmup,
      int nproc,
      Path rdzv,
      Path torchrun,
      String python,
      Path torch2,
      boolean noPytorch) {
    public Options {
      if (runs < 1 || warmup < 0 || nproc < 1) {
        throw new IllegalArgumentException(
            "--runs and --nproc-per-node must be positive, --warmup not negative.");
      }
    }
  }

  /**
   * Runs the benchmark, printing to {@code out}.
   *
   * @throws IllegalArgumentException if bin/rdzv or the torchrun wrapper cannot be found
   * @throws IllegalStateException if a launch fails or takes more than 300 s
   */
  public static void run(PrintWriter out, Options o) {
    Path root = checkout();
    Path rdzvScript = o.rdzv() != null ? o.rdzv() : root == null ? null : root.resolve("bin/rdzv");
    if (rdzvScript == null || !Files.isExecutable(rdzvScript)) {
      throw new IllegalArgumentException(
          "--rdzv: cannot find bin/rdzv (give its path with --rdzv).");
    }
    List<String> ours =
        List.of(
            rdzvScript.toString(),
            "run",
            "--standalone",
            "--nproc-per-node",
            "" + o.nproc(),
            "--no-python",
            "true");
    List<String> theirs = null;
    List<String> theirs2 = null;
    if (!o.noPytorch()) {
      Path enter = o.torch2().resolve("enter");
      if (!Files.isExecutable(enter)) {
        throw new IllegalArgumentException(
            "--torch2: no PyTorch 2.6 root at "
                + o.torch2()
                + " (build one with .ci/torch2-peer.sh DIR and give --torch2 DIR, or --no-pytorch).");
      }
      theirs2 =
          List.of(
              enter.toString(),
              "torchrun",
              "--standalone",
              "--nproc-per-node",
              "" + o.nproc(),
              "--no-python",
              "true");
      // The wrapper that starts Debian's torchrun 1.13 on Python 3.11 (it crashes at start there
      // otherwise): the one given, else the copy rdzv-testing ships.
      Path wrapper =
          o.torchrun() != null ? o.torchrun() : Path.of(Torch.V1_13.torchrun().getLast());
      if (!Files.isRegularFile(wrapper)) {
        throw new IllegalArgumentException(
            "--torchrun: no such file: "
                + wrapper
                + " (give the torchrun 1.13 wrapper, or --no-pytorch).");
      }
      theirs =
          List.of(
              o.python(),
              wrapper.toString(),
              "--standalone",
              "--nproc_per_node",
              "" + o.nproc(),
              "--no_python",
              "true");
    }
    out.printf(
        "launch: --standalone, %d workers running `true`; %d timed runs each (after %d warm-up), alternating%n",
        o.nproc(), o.runs(), o.warmup());
    out.printf("  rdzv         : %s%n", String.join(" ", ours));
    if (theirs != null) {
      out.printf("  torchrun 1.13: %s%n", String.join(" ", theirs));
      out.printf("  torchrun 2.6 : %s%n", String.join(" ", theirs2));
    }
    out.flush();
    for (int i = 0; i < o.warmup(); i++) {
      time(ours);
      if (theirs != null) {
        time(theirs);
        time(theirs2);
      }
    }
    List<Double> rdzvTimes = new ArrayList<>();
    List<Double> torchTimes = new ArrayList<>();
    List<Double> torch2Times = new ArrayList<>();
    for (int i = 0; i < o.runs(); i++) {
      if (theirs != null) {
        torchTimes.add(time(theirs));
        torch2Times.add(time(theirs2));
      }
      rdzvTimes.add(time(ours));
    }
    double r = median(rdzvTimes);
    out.printf(Locale.ROOT, "  rdzv run      : median %.2f s  (runs: %s)%n", r, list(rdzvTimes));
    if (theirs != null) {
      double t = median(torchTimes);
      double t2 = median(torch2Times);
      out.printf(Locale.ROOT, "  torchrun 1.13 : median %.2f s  (runs: %s)%n", t, list(torchTimes));
      out.printf(
          Locale.ROOT, "  torchrun 2.6  : median %.2f s  (runs: %s)%n", t2, list(torch2Times));
      out.printf(Locale.ROOT, "  ratio         : rdzv is %.1fx faster than torchrun 1.13%n", t / r);
      out.printf(Locale.ROOT, "  ratio         : rdzv is %.1fx faster than torchrun 2.6%n", t2 / r);
    }
    out.flush();
  }

  /** Runs a launch to completion and returns its wall time in seconds. */
  private static double time(List<String> command) {
    try {
      Path log = Files.createTempFile("rdzv-bench-launch-", ".log");
      try {
        ProcessBuilder b =
            new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        // Never let bin/rdzv rebuild inside a timed run, and let it find a JDK at once (this one,
        // unless the user chose one), as for a user with JAVA_HOME set.
        b.environment().put("RDZV_REBUILD", "0");
        b.environment().putIfAbsent("JAVA_HOME", System.getProperty("java.home"));
        long start = System.nanoTime();
        Process p = b.start();
        if (!p.waitFor(300, TimeUnit.SECONDS)) {
          p.descendants().forEach(ProcessHandle::destroyForcibly);
          p.destroyForcibly();
          throw new IllegalStateException(command.get(0) + " did not finish within 300 s");
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        if (p.exitValue() != 0) {
          List<String> lines = Files.readAllLines(log);
          String tail =
              String.join(" | ", lines.subList(Math.max(0, lines.size() - 3), lines.size()));
          throw new IllegalStateException(
              String.join(" ", command) + " exited with " + p.exitValue() + ": " + tail);
        }
        return seconds;
      } finally {
        Files.deleteIfExists(log);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot run " + command.get(0) + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }

  private static double median(List<Double> values) {
    List<Double> sorted = new ArrayList<>(values);
    sorted.sort(null);
    int n = sorted.size();
    return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
  }

  private static String list(List<Double> values) {
    List<String> texts = new ArrayList<>();
    for (double v : values) {
      texts.add(String.format(Locale.ROOT, "%.2f", v));
    }
    return String.join(" ", texts);
  }

  /** The checkout this command runs from: the nearest ancestor holding bin/rdzv, else null. */
  static Path checkout() {
    List<Path> starts = new ArrayList<>();
    try {
      starts.add(
          Path.of(LaunchBench.class.getProtectionDomain().getCodeSource().getLocation().toURI()));
    } catch (URISyntaxException | SecurityException | NullPointerException e) {
      // fall back to the working directory
    }
    starts.add(Path.of("").toAbsolutePath());
    for (Path start : starts) {
      for (Path dir = start.toAbsolutePath(); dir != null; dir = dir.getParent()) {
        if (Files.isRegularFile(dir.resolve("bin/rdzv"))) {
          return dir;
        }
      }
    }
    return null;
  }
}
