package org.rdzv.cli;

import java.nio.file.Path;
import java.util.concurrent.Callable;
import org.rdzv.bench.launch.LaunchBench;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code rdzv bench launch}: wall time of a whole standalone launch (start, rendezvous, two workers
 * running {@code true}, exit) by {@code bin/rdzv run}, torchrun 1.13 and torchrun 2.6, alternating
 * in the same run. Prints the medians and rdzv's ratio to each.
 */
@Command(
    name = "launch",
    mixinStandardHelpOptions = true,
    description = {
      "Time a standalone launch, against torchrun.",
      "Runs, alternately: bin/rdzv run --standalone --nproc-per-node N --no-python true",
      "and: python torchrun_py311.py --standalone --nproc_per_node N --no_python true",
      "(torchrun 1.13) and DIR/enter torchrun --standalone ... (torchrun 2.6), each as a fresh",
      "process, and compares the median wall times."
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
          "torchrun 1.13 wrapper script (default: the one rdzv ships, as shared/tools/torchrun_py311.py).")
  Path torchrun;

  @Option(
      names = "--python",
      paramLabel = "PATH",
      defaultValue = "/usr/bin/python3",
      description = "Interpreter that imports PyTorch 1.13 (default: ${DEFAULT-VALUE}).")
  String python;

  @Option(
      names = "--torch2",
      paramLabel = "DIR",
      defaultValue = "${env:RDZV_TEST_TORCH2:-/opt/torch2-peer}",
      description =
          "Root holding PyTorch 2.6, built by .ci/torch2-peer.sh (default: ${DEFAULT-VALUE}).")
  Path torch2;

  @Option(names = "--no-pytorch", description = "Time rdzv only.")
  boolean noPytorch;

  @Override
  public Integer call() {
    LaunchBench.run(
        spec.commandLine().getOut(),
        new LaunchBench.Options(runs, warmup, nproc, rdzv, torchrun, python, torch2, noPytorch));
    return ExitCode.OK.code();
  }
}
