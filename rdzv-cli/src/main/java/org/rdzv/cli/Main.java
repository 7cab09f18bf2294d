package org.rdzv.cli;

/** Entry point of {@code bin/rdzv}. */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    // Log lines: see Logging (LOGLEVEL, --log-format) and docs/logging.md.
    System.exit(Cli.run(System.out, System.err, args));
  }
}
