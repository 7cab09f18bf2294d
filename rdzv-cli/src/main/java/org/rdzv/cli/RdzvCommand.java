package org.rdzv.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/**
 * The {@code rdzv} root command: a list of subcommands ({@link #SUBCOMMANDS}, which {@link Cli}
 * registers).
 */
@Command(
    name = "rdzv",
    mixinStandardHelpOptions = true,
    versionProvider = VersionProvider.class,
    description = "PyTorch's elastic rendezvous for the JVM, wire-compatible with PyTorch.",
    footer = {"", "Run 'rdzv COMMAND --help' for a command's options."})
public final class RdzvCommand implements Runnable {
  /**
   * The subcommands by name, in help order. Registered by {@link Cli}: only the one a command line
   * names, when it names one, since building a subcommand's model (annotations, reflection) is most
   * of a short command's start-up.
   */
  static final java.util.Map<String, java.util.function.Supplier<Object>> SUBCOMMANDS =
      subcommands();

  private static java.util.Map<String, java.util.function.Supplier<Object>> subcommands() {
    java.util.Map<String, java.util.function.Supplier<Object>> map =
        new java.util.LinkedHashMap<>();
    map.put("run", RunCommand::new);
    map.put("store", StoreCommand::new);
    map.put("join", JoinCommand::new);
    map.put("status", StatusCommand::new);
    map.put("bench", BenchCommand::new);
    return java.util.Collections.unmodifiableMap(map);
  }

  @Option(
      names = {"-v", "--verbose"},
      scope = ScopeType.INHERIT,
      description = "Show stack traces of errors.")
  boolean verbose;

  @Option(
      names = {"--log-format"},
      scope = ScopeType.INHERIT,
      paramLabel = "FORMAT",
      defaultValue = "text",
      description =
          "Log lines as text (LEVEL:logger:message) or json (one object a line); the level is"
              + " $$LOGLEVEL's, as torchrun (default: ${DEFAULT-VALUE}).")
  Logging.Format logFormat = Logging.Format.TEXT;

  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  /** Whether the output stream is this process's terminal (set by {@link Cli}, not a flag). */
  boolean outIsTerminal;

  @Override
  public void run() {
    spec.commandLine().usage(spec.commandLine().getOut());
  }
}
