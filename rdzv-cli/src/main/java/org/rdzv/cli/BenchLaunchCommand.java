package org.rdzv.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code rdzv bench launch}: wall time of a whole standalone launch (start, rendezvous, two workers
 * running {@code true}, exit) by {@code bin/rdzv run} and by torchrun 1.13, alternating in the same
 * run. Prints both medians and the ratio.
 */
@Command(
    name = "launch",
    mixinStandardHelpOptions = true,
    description = {
      "Time a standalone launch, against torchrun.",
      "Runs, alternately: bin/rdzv run --standalone --nproc-per-node N --no-python true",
      "and: python torchrun_py311.py --standalone --nproc_per_node N --no_python true",
      "(torchrun 1.13), each as a fresh process, and compares the median wall times."
    })
public final class BenchLaunchCommand implements Callable<Integer> {

  @Spec CommandSpec spec;

  @Option(
      names = "--runs",
      paramLabel = "N",
      defaultValue = "3",
      description = "Timed launches of each (default: ${DEFAULT-VALUE}).")
  int runs;

  @Option(
      names = "--warmup",
      paramLabel = "N",
      defaultValue = "1",
      description = "Untimed launches of each first, to warm caches (default: ${DEFAULT-VALUE}).")
  int warmup;

  @Option(
      names = {"--nproc-per-node", "--nproc_per_node"},
      paramLabel = "N",
      defaultValue = "2",
      description = "Workers per launch (default: ${DEFAULT-VALUE}).")
  int nproc;

  @Option(
      names = "--rdzv",
      paramLabel = "PATH",
      description = "The rdzv launcher script (default: bin/rdzv of this checkout).")
  Path rdzv;

  @Option(
      names = "--torchrun",
      paramLabel = "PATH",
      description =
          "torchrun 1.13 wrapper (default: ../shared/tools/torchrun_py311.py next to this checkout).")
  Path torchrun;

  @Option(
      names = "--python",
      paramLabel = "PATH",
      defaultValue = "/usr/bin/python3",
      description = "Interpreter that imports PyTorch 1.13 (default: ${DEFAULT-VALUE}).")
  String python;

  @Option(names = "--no-pytorch", description = "Time rdzv only.")
  boolean noPytorch;

  @Override
  public Integer call() {
    if (runs < 1 || warmup < 0 || nproc < 1) {
      throw new IllegalArgumentException(
          "--runs and --nproc-per-node must be positive, --warmup not negative.");
    }
    PrintWriter out = spec.commandLine().getOut();
    Path root = checkout();
    Path rdzvScript = rdzv != null ? rdzv : root == null ? null : root.resolve("bin/rdzv");
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
            "" + nproc,
            "--no-python",
            "true");
    List<String> theirs = null;
    if (!noPytorch) {
      Path wrapper =
          torchrun != null
              ? torchrun
              : root == null ? null : root.resolveSibling("shared/tools/torchrun_py311.py");
      if (wrapper == null || !Files.isRegularFile(wrapper)) {
        throw new IllegalArgumentException(
            "--torchrun: cannot find shared/tools/torchrun_py311.py next to this checkout (give --torchrun PATH, or --no-pytorch).");
      }
      theirs =
          List.of(
              python,
              wrapper.toString(),
              "--standalone",
              "--nproc_per_node",
              "" + nproc,
              "--no_python",
              "true");
    }
    out.printf(
        "launch: --standalone, %d workers running `true`; %d timed runs each (after %d warm-up), alternating%n",
        nproc, runs, warmup);
    out.printf("  rdzv    : %s%n", String.join(" ", ours));
    if (theirs != null) {
      out.printf("  torchrun: %s%n", String.join(" ", theirs));
    }
    out.flush();
    for (int i = 0; i < warmup; i++) {
      time(ours);
      if (theirs != null) {
        time(theirs);
      }
    }
    List<Double> rdzvTimes = new ArrayList<>();
    List<Double> torchTimes = new ArrayList<>();
    for (int i = 0; i < runs; i++) {
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
    return ExitCode.OK.code();
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
          Path.of(
              BenchLaunchCommand.class
                  .getProtectionDomain()
                  .getCodeSource()
                  .getLocation()
                  .toURI()));
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
