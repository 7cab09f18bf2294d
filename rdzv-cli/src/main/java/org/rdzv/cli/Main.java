package org.rdzv.cli;

/** Entry point of {@code bin/rdzv}. */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    // Log lines written while the JVM shuts down (SIGTERM) must not be lost.
    if (System.getProperty("java.util.logging.manager") == null) {
      System.setProperty("java.util.logging.manager", ShutdownLogManager.class.getName());
    }
    // One line per log record, as torchrun prints them: LEVEL:logger:message.
    if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
      System.setProperty("java.util.logging.SimpleFormatter.format", "%4$s:%3$s:%5$s%6$s%n");
    }
    System.exit(Cli.run(System.out, System.err, args));
  }
}
