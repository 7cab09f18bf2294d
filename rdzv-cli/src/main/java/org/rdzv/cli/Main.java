package org.rdzv.cli;

/** Entry point of {@code bin/rdzv}. */
public final class Main {
  private Main() {}

  public static void main(String[] args) {
    System.exit(Cli.run(System.out, System.err, args));
  }
}
