package org.rdzv.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/** The {@code rdzv} root command: a list of subcommands. */
@Command(
    name = "rdzv",
    mixinStandardHelpOptions = true,
    versionProvider = VersionProvider.class,
    description = "PyTorch's elastic rendezvous for the JVM, wire-compatible with PyTorch.",
    subcommands = {
      RunCommand.class,
      StoreCommand.class,
      JoinCommand.class,
      StatusCommand.class,
      BenchCommand.class,
    },
    footer = {"", "Run 'rdzv COMMAND --help' for a command's options."})
public final class RdzvCommand implements Runnable {
  @Option(
      names = {"-v", "--verbose"},
      scope = ScopeType.INHERIT,
      description = "Show stack traces of errors.")
  boolean verbose;

  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  /** Whether the output stream is this process's terminal (set by {@link Cli}, not a flag). */
  boolean outIsTerminal;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }
}
