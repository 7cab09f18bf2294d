package org.rdzv.cli;

/** Exit codes of {@code rdzv}. */
public enum ExitCode {
  /** The command did what it was asked. */
  OK(0),
  /** The command failed (rendezvous error, worker failure, unreachable backend...). */
  FAILURE(1),
  /** The command line was wrong: unknown flag, bad value. */
  USAGE(2),
  /** Stopped by SIGINT. */
  INTERRUPTED(130);

  private final int code;

  ExitCode(int code) {
    this.code = code;
  }

  public int code() {
    return code;
  }
}
