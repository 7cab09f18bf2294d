package org.rdzv.cli;

import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import picocli.CommandLine;

/**
 * Runs {@code rdzv} in-process: {@link #run(PrintStream, PrintStream, String...)} parses, executes
 * and turns every failure into one line on {@code err} and an {@link ExitCode}. Tests call it
 * directly.
 */
public final class Cli {
  private Cli() {}

  /** Runs one command line and returns the process exit code. */
  public static int run(PrintStream out, PrintStream err, String... args) {
    RdzvCommand root = new RdzvCommand();
    root.outIsTerminal = out == System.out && stdoutIsTerminal();
    CommandLine cli = new CommandLine(root);
    String named = subcommand(args);
    RdzvCommand.SUBCOMMANDS.forEach(
        (name, create) -> {
          if (named == null || named.equals(name)) {
            // As a CommandLine of its own: addSubcommand(name, object) re-initializes the
            // subcommand's parser from the root's, losing run's stopAtPositional (its program's
            // own flags, such as sh -c, were then taken for rdzv's).
            cli.addSubcommand(name, new CommandLine(create.get()));
          }
        });
    cli.setOut(new PrintWriter(out, true, StandardCharsets.UTF_8));
    cli.setErr(new PrintWriter(err, true, StandardCharsets.UTF_8));
    cli.setCaseInsensitiveEnumValuesAllowed(true);
    cli.setParameterExceptionHandler(
        (ex, arguments) -> {
          CommandLine command = ex.getCommandLine();
          err.println("rdzv " + commandName(command) + ": " + ex.getMessage());
          err.println("Try 'rdzv " + commandName(command) + " --help' for more information.");
          err.flush();
          return ExitCode.USAGE.code();
        });
    cli.setExecutionExceptionHandler(
        (ex, command, parseResult) -> {
          if (root.verbose) {
            ex.printStackTrace(err);
          }
          err.println("rdzv " + commandName(command) + ": " + Errors.oneLine(ex));
          err.flush();
          return ex instanceof IllegalArgumentException
              ? ExitCode.USAGE.code()
              : ExitCode.FAILURE.code();
        });
    cli.setExecutionStrategy(
        parseResult -> {
          // Logging is set up for the command that runs: LOGLEVEL and --log-format.
          CommandLine command = parseResult.asCommandLineList().getLast();
          try {
            Logging.configure(root.logFormat, System.getenv());
          } catch (IllegalArgumentException e) {
            throw new CommandLine.ExecutionException(command, e.getMessage(), e);
          }
          return new CommandLine.RunLast().execute(parseResult);
        });
    return cli.execute(args);
  }

  /**
   * Whether standard output is a terminal: {@code Console.isTerminal()} where the JDK has it (22+,
   * where a console exists even when output is redirected), else whether there is a console at all
   * (JDK 21 gives one only when standard input and output are terminals).
   */
  static boolean stdoutIsTerminal() {
    java.io.Console console = System.console();
    if (console == null) {
      return false;
    }
    try {
      return (Boolean) java.io.Console.class.getMethod("isTerminal").invoke(console);
    } catch (NoSuchMethodException e) {
      return true;
    } catch (ReflectiveOperationException e) {
      return false;
    }
  }

  /** The subcommand a command line names (its first word after the root's options), or null. */
  private static String subcommand(String... args) {
    for (String arg : args) {
      if (!arg.startsWith("-")) {
        return RdzvCommand.SUBCOMMANDS.containsKey(arg) ? arg : null;
      }
    }
    return null;
  }

  private static String commandName(CommandLine command) {
    String name = command.getCommandSpec().qualifiedName(" ");
    return name.startsWith("rdzv ") ? name.substring(5) : name.equals("rdzv") ? "" : name;
  }
}
