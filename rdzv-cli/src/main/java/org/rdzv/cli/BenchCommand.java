package org.rdzv.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code rdzv bench}: benchmarks that print figures and the ratio to PyTorch in the same run. */
@Command(
    name = "bench",
    mixinStandardHelpOptions = true,
    description = "Measure rdzv against PyTorch, in the same run.",
    subcommands = {BenchStoreCommand.class, BenchRendezvousCommand.class, BenchLaunchCommand.class})
public final class BenchCommand implements Runnable {
  @Spec CommandSpec spec;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }
}
