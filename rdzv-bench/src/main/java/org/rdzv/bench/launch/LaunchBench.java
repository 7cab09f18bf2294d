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

/**
 * The engine of {@code rdzv bench launch}: wall time of a whole standalone launch (start,
 * rendezvous, N workers running {@code true}, exit) by {@code bin/rdzv run} and by torchrun 1.13,
 * alternating in the same run. Prints both medians and the ratio.
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
   * @param torchrun the torchrun 1.13 wrapper, or {@code null} for {@code
   *     ../shared/tools/torchrun_py311.py} next to it
   * @param python the interpreter that imports PyTorch 1.13
   * @param noPytorch time rdzv only
   */
  public record Options(
      int runs, int warmup, int nproc, Path rdzv, Path torchrun, String python, boolean noPytorch) {
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
    if (!o.noPytorch()) {
      Path wrapper =
          o.torchrun() != null
              ? o.torchrun()
              : root == null ? null : root.resolveSibling("shared/tools/torchrun_py311.py");
      if (wrapper == null || !Files.isRegularFile(wrapper)) {
        throw new IllegalArgumentException(
            "--torchrun: cannot find shared/tools/torchrun_py311.py next to this checkout (give --torchrun PATH, or --no-pytorch).");
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
    out.printf("  rdzv    : %s%n", String.join(" ", ours));
    if (theirs != null) {
      out.printf("  torchrun: %s%n", String.join(" ", theirs));
    }
    out.flush();
    for (int i = 0; i < o.warmup(); i++) {
      time(ours);
      if (theirs != null) {
        time(theirs);
      }
    }
    List<Double> rdzvTimes = new ArrayList<>();
    List<Double> torchTimes = new ArrayList<>();
    for (int i = 0; i < o.runs(); i++) {
      if (theirs != null) {
        torchTimes.add(time(theirs));
      }
      rdzvTimes.add(time(ours));
    }
    double r = median(rdzvTimes);
    out.printf(Locale.ROOT, "  rdzv run      : median %.2f s  (runs: %s)%n", r, list(rdzvTimes));
    if (theirs != null) {
      double t = median(torchTimes);
      out.printf(Locale.ROOT, "  torchrun 1.13 : median %.2f s  (runs: %s)%n", t, list(torchTimes));
      out.printf(Locale.ROOT, "  ratio         : rdzv is %.1fx faster%n", t / r);
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
