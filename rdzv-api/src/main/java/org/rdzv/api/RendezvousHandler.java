package org.rdzv.api;

import java.util.Set;

/**
 * One node's handle on a rendezvous: the contract of PyTorch's {@code RendezvousHandler}, plus what
 * a Java agent needs so that it never downcasts: leaving without closing the rendezvous for the
 * others, learning that participants of its round are gone, and releasing what the handler owns.
 *
 * <p>An agent calls {@link #nextRendezvous()} to join a round, watches {@link #numNodesWaiting()}
 * to learn that late nodes want in (and then calls {@link #nextRendezvous()} again), calls {@link
 * #shutdown()} when the job ends on every node, and {@link #close()} when it is done with the
 * handler (always, in a {@code finally} or try-with-resources). Implementations are thread-safe.
 *
 * <p>Lifecycle: {@link #shutdown()} and {@link #setClosed()} close the <em>rendezvous</em> for
 * every node; {@link #leave()} takes only this node out of it; {@link #close()} releases only this
 * <em>handler</em> (heartbeats, connections, a store server it hosts) and changes nothing in the
 * shared state. After {@link #close()} no other method may be called.
 */
public interface RendezvousHandler extends AutoCloseable {

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
   * PyTorch 2.x's {@code use_agent_store}: whether workers are clients of a store that already runs
   * at the round's bootstrap address ({@link RendezvousInfo#bootstrapStoreInfo()}; the dynamic
   * handler's rank 0 serves it under 2.x dialects, {@code static} the rendezvous endpoint) instead
   * of worker rank 0 hosting one there; sets {@code TORCHELASTIC_USE_AGENT_STORE}. Meaningful after
   * {@link #nextRendezvous()}.
   */
  default boolean useAgentStore() {
    return false;
  }

  /**
   * Stops this node's background work and closes the rendezvous for every node. Returns {@code
   * false} if closing failed with a {@link RendezvousException} (which is logged). Does not release
   * the handler: call {@link #close()} as well.
   */
  boolean shutdown();

  /**
   * This node's name in the rendezvous, as other nodes, {@link Listener}s and {@code rdzv status}
   * show it ({@code host_pid_localId} for the dynamic rendezvous). Empty where the backend does not
   * name nodes (the default). Does not block.
   */
  default String nodeName() {
    return "";
  }

  /**
   * Takes this node out of the rendezvous without closing it for the others: it stops heartbeating,
   * and where the backend can, removes itself from the round at once so that the others see it gone
   * now rather than when its heartbeat expires. A complete round stays complete. Blocks for at most
   * the backend's close timeout; idempotent.
   *
   * <p>The default does nothing: the backend notices a node gone on its own (its keep-alive expires
   * once the handler is closed, or membership is fixed, as for {@code static}).
   *
   * @throws RendezvousException if the backend fails or the timeout passes
   */
  default void leave() {}

  /**
   * Registers a listener told when participants of this node's completed round disappear (they
   * left, or stopped heartbeating): PyTorch issue #111646, where survivors would otherwise carry on
   * with a dead peer. Listeners run on the thread that noticed (a heartbeat, or a caller of {@link
   * #numNodesWaiting()} or {@link #isClosed()}), outside the handler's locks; they must not block.
   * Adding the same listener twice registers it twice.
   *
   * <p>The default never calls the listener: the backend cannot tell (legacy {@code etcd} and
   * {@code static} rendezvous).
   */
  default void addListener(Listener listener) {}

  /** Removes one registration of {@code listener}; does nothing if it is not registered. */
  default void removeListener(Listener listener) {}

  /**
   * Releases everything this handler owns: stops its heartbeats and background threads, closes its
   * connections and stops a store server it hosts (so a JVM whose {@code main} ends after {@code
   * close()} exits). Leaves the shared state as it is; nodes that still use a store this handler
   * hosted lose it, so the hosting node should close last. Idempotent; never throws (failures are
   * logged).
   */
  @Override
  void close();

  /** Told about membership changes of this node's round; see {@link #addListener}. */
  @FunctionalInterface
  interface Listener {
    /**
     * Participants of {@code round}, which this node completed with them, stopped heartbeating or
     * left; {@code lost} holds only the newly lost ones, by {@linkplain #nodeName() name}.
     */
    void participantsLost(long round, Set<String> lost);
  }
}
