package org.rdzv.launcher;

/** The state of an agent's local worker group: PyTorch's {@code WorkerState}. */
public enum WorkerState {
  /** Created, not started. */
  INIT,
  /** Running. */
  HEALTHY,
  /** A worker misbehaves (not used by this agent, kept for PyTorch's vocabulary). */
  UNHEALTHY,
  /** Stopped by the agent, e.g. before a restart. */
  STOPPED,
  /** Every worker exited 0. */
  SUCCEEDED,
  /** A worker exited non-zero or was killed. */
  FAILED,
  /** The agent lost track of its workers. */
  UNKNOWN;

  /** Whether the group ended (successfully or not). */
  public boolean isTerminal() {
    return this == SUCCEEDED || this == FAILED;
  }
}
