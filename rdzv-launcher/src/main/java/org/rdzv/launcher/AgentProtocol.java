package org.rdzv.launcher;

/**
 * The two store protocols of PyTorch's elastic agents (reference §9.2, §9.6), which cannot meet in
 * one round: agents of a round use one, and its workers get that PyTorch line's environment.
 */
enum AgentProtocol {
  /**
   * torchrun 1.13: every agent writes {@code torchelastic/role_info<r>}, reads all and writes
   * {@code .FIN}; agent 0 publishes {@code MASTER_ADDR}/{@code MASTER_PORT}; the exit barrier
   * synchronizes on {@code torchelastic/agent/terminal_state<r>}, after success and failure.
   */
  V1_13("1.13"),

  /**
   * torchrun 2.x (2.4 and later): every agent writes {@code torchelastic/role_info/<r>}, agent 0
   * reads them all and writes {@code torchelastic/assigned_ranks/<r>}; workers find their store
   * from the rendezvous's bootstrap information; the exit barrier counts {@code
   * torchelastic/agent/terminal_state/num_members}, after success only.
   */
  V2("2.x");

  private final String label;

  AgentProtocol(String label) {
    this.label = label;
  }

  /** {@code 1.13} or {@code 2.x}, as logs and errors name it. */
  String label() {
    return label;
  }

  /** Whether an agent whose workers failed (no restarts left) waits in the exit barrier. */
  boolean barrierAfterFailure() {
    return this == V1_13;
  }
}
