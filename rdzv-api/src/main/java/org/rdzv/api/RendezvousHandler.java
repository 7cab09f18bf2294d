package org.rdzv.api;

/**
 * One node's handle on a rendezvous: the contract of PyTorch's {@code RendezvousHandler}.
 *
 * <p>An agent calls {@link #nextRendezvous()} to join a round, watches {@link #numNodesWaiting()}
 * to learn that late nodes want in (and then calls {@link #nextRendezvous()} again), and calls
 * {@link #shutdown()} when the job ends. Implementations are thread-safe.
 */
public interface RendezvousHandler {

  /** The registry name of this handler's backend ({@code c10d}, {@code etcd-v2}, ...). */
  String backend();

  /**
   * Leaves the current round, if any, and blocks until the next round completes with this node in
   * it.
   *
   * @throws RendezvousClosedException if the rendezvous is closed
   * @throws RendezvousTimeoutException if the round does not complete within the join timeout
   * @throws RendezvousConnectionException if the backend fails
   * @throws RendezvousStateException if the shared state cannot be decoded
   * @throws RendezvousGracefulExitException if this spare node should end cleanly
   */
  RendezvousInfo nextRendezvous();

  /** Whether the rendezvous is closed. May read the backend. */
  boolean isClosed();

  /** Closes the rendezvous for every node. */
  void setClosed();

  /** How many nodes wait for the next round. An agent re-rendezvouses when this is positive. */
  int numNodesWaiting();

  /** The run id shared by the nodes of this rendezvous. */
  String runId();

  /**
   * Whether workers should use the store this handler returns (as clients) instead of hosting their
   * own; sets {@code TORCHELASTIC_USE_AGENT_STORE}.
   */
  default boolean useAgentStore() {
    return false;
  }

  /**
   * Stops this node's background work and closes the rendezvous for every node. Returns {@code
   * false} if closing failed with a {@link RendezvousException} (which is logged).
   */
  boolean shutdown();
}
