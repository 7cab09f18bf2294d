package org.rdzv.cli;

/** Entry point of {@code bin/rdzv}. */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    // Log lines: see Logging (LOGLEVEL, --log-format) and docs/logging.md.
    // Log lines written while the JVM shuts down (SIGTERM) must not be lost.
    if (System.getProperty("java.util.logging.manager") == null) {
      System.setProperty("java.util.logging.manager", ShutdownLogManager.class.getName());
    }
    System.exit(Cli.run(System.out, System.err, args));
  }
}
