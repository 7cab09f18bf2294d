package org.rdzv.dynamic;

import java.time.Duration;
import java.util.Optional;

/**
 * Where the dynamic rendezvous keeps its one shared state value: PyTorch's {@code
 * RendezvousBackend} (c10d store, etcd v2, etcd v3).
 *
 * <p>The state is opaque bytes (a pickled {@code _RendezvousState}); the backend stores it
 * (base64-encoded where PyTorch does) and fences writes with a token it alone understands: the
 * previous base64 value on c10d, the modified index on etcd v2, the mod revision on etcd v3.
 * Methods block on the network for at most the backend's read timeout and report failures as {@link
 * org.rdzv.api.RendezvousConnectionException} (backend unreachable) or {@link
 * org.rdzv.api.RendezvousStateException} (stored value not decodable). Implementations are
 * thread-safe.
 */
public interface RendezvousBackend {

  /** The backend's name, e.g. {@code c10d}, as PyTorch's {@code RendezvousBackend.name}. */
  String name();

  /** Reads the state; empty when none has been written yet. */
  Optional<State> getState();

  /**
   * Writes {@code state} if the stored state still carries {@code token} ({@code null}: only if no
   * state exists yet). Returns what is stored afterwards and whether this call wrote it; empty when
   * there is still no state.
   */
  Optional<SetResult> setState(byte[] state, Object token);

  /**
   * {@link #setState(byte[], Object)}, told whether the write matters to nodes that wait (a round
   * completed, opened or closed, a deadline moved, a participant left, a list changed) rather than
   * being a heartbeat or one more participant below the minimum. A backend that signals changes may
   * signal only significant ones, so that a thousand waiting nodes are not woken by every join. The
   * default ignores the hint.
   */
  default Optional<SetResult> setState(byte[] state, Object token, boolean significant) {
    return setState(state, token);
  }

  /**
   * Blocks until the stored state may differ from the one that carried {@code token}, or until
   * {@code timeout} passes; returns {@code true} if a change was signalled (spurious signals are
   * allowed; callers re-read). Lets nodes react to each other at once instead of re-reading every
   * second, as PyTorch does. Callers wait at most about a second, so a backend may signal only
   * significant changes, and changes written by PyTorch nodes need not be signalled. The default
   * signals nothing and simply waits out the timeout, which gives PyTorch's polling.
   */
  default boolean awaitChange(Object token, Duration timeout) throws InterruptedException {
    Thread.sleep(timeout);
    return false;
  }

  /**
   * Optional help against contention: blocks until this node may write with little risk of
   * colliding (its turn among Java writers), or until the queue has not moved for {@code timeout};
   * the caller re-reads, writes, and closes the returned turn. {@code joining} is this node when it
   * queues to add itself to the participants, else {@code null}: the backend may then let the
   * writer before it add it too ({@link Turn#waitingJoiners()}). Correctness never depends on turns
   * — every write stays fenced by its token. The default returns {@link Turn#NONE}: no turns, write
   * optimistically.
   */
  default Turn awaitTurn(Duration timeout, NodeDescriptor joining) throws InterruptedException {
    return Turn.NONE;
  }

  /** A turn from {@link #awaitTurn}; closing passes it on. Idempotent. */
  interface Turn extends AutoCloseable {
    Turn NONE = () -> {};

    /**
     * Nodes queued right behind this one that asked to join (alive a moment ago). A writer that
     * adds itself to the participants may add them in the same write, as if each had added itself,
     * and then reports how many with {@link #admitted(int)}. May read the backend; called at most
     * once per write.
     */
    default java.util.List<NodeDescriptor> waitingJoiners() {
      return java.util.List.of();
    }

    /** The first {@code count} of {@link #waitingJoiners()} are in the state this turn wrote. */
    default void admitted(int count) {}

    @Override
    void close();
  }

  /**
   * How many nodes of this rendezvous are known to signal their significant changes (see {@link
   * #awaitChange}), as of the last read; an upper bound is fine. When the state holds no more nodes
   * than this, waiting nodes poll less often. The default, 0, keeps PyTorch's polling.
   */
  default long signallingNodes() {
    return 0;
  }

  /**
   * Tells status tools about {@code node} ({@link NodeNote}: its node range and join deadline), or
   * withdraws what it told them ({@code note} null), on a key of rdzv's own ({@link
   * RendezvousKeys.Own#NODE}) that PyTorch never reads. Best effort: a failure is not reported and
   * changes nothing in the rendezvous. Called when the node starts to join and when it leaves or
   * shuts down. The default keeps nothing; {@code rdzv status} then shows no node range or join
   * deadline.
   */
  default void publishNote(NodeDescriptor node, NodeNote note) {}

  /** A stored state and the token that fences the next write. */
  record State(byte[] state, Object token) {}

  /** The outcome of {@link #setState}. */
  record SetResult(byte[] state, Object token, boolean written) {}
}
