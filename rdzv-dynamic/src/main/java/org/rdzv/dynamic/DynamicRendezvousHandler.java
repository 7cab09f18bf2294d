package org.rdzv.dynamic;

import java.util.Set;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.Store;

/**
 * PyTorch's {@code DynamicRendezvousHandler}: nodes join rounds through one shared state held by a
 * {@link RendezvousBackend}, sharing it with real PyTorch nodes of the same state dialect.
 *
 * <p>Beyond {@link RendezvousHandler}, a Java node can {@linkplain #leave() leave} without closing
 * the rendezvous for everyone, learn that {@linkplain #addListener participants of its round
 * stopped heartbeating} (PyTorch issue #111646), and read the {@linkplain #state() state}.
 * Thread-safe: operations hold one lock, released while an operation waits for others, so {@link
 * #numNodesWaiting()} or {@link #state()} answer during a long {@link #nextRendezvous()}.
 */
public interface DynamicRendezvousHandler extends RendezvousHandler, AutoCloseable {

  /**
   * Creates a handler over any backend: PyTorch's {@code create_handler(store, backend, params)}.
   * Reads PyTorch's config keys ({@code join_timeout}, {@code last_call_timeout}, {@code
   * close_timeout}, {@code heartbeat_timeout}, {@code keep_alive_interval}, {@code
   * keep_alive_max_attempt}) and the Java-only {@code state_dialect} and {@code rank_order}. Does
   * not contact the backend.
   *
   * @param store the store returned (round-prefixed) to callers; not closed by this handler
   * @throws IllegalArgumentException for invalid parameters, with PyTorch's message
   */
  static DynamicRendezvousHandler create(
      RendezvousBackend backend, Store store, RendezvousParameters params) {
    return DynamicHandler.create(backend, store, params, null);
  }

  /** This node's descriptor. */
  NodeDescriptor node();

  /** The state as last synced, refreshed from the backend if older than a second. */
  StateSnapshot state();

  /**
   * Leaves the rendezvous without closing it: stops heartbeating and removes this node from the
   * participants (or the wait or redundancy list). Others see it gone at once instead of after the
   * heartbeat expiry; a complete round stays complete, and when its last participant leaves the
   * next round opens. Blocks up to {@code close_timeout}.
   *
   * @throws org.rdzv.api.RendezvousException if the backend fails or the timeout passes
   */
  void leave();

  /** Participants of this node's current, completed round that are gone (left or dead). */
  Set<NodeDescriptor> lostParticipants();

  /**
   * Registers a listener told when participants of this node's completed round disappear — found by
   * this node's heartbeat or any other sync. Listeners run on the thread that noticed, outside the
   * handler's lock; they must not block.
   */
  void addListener(Listener listener);

  void removeListener(Listener listener);

  /**
   * Stops heartbeating and releases what this handler owns: a store it created, a hosted server,
   * and the bootstrap store server it runs as rank 0 under a 2.x dialect ({@link #shutdown()} stops
   * that one too). Idempotent.
   */
  @Override
  void close();

  /** Notified of membership events of this node's round. */
  @FunctionalInterface
  interface Listener {
    /**
     * Participants of {@code round} (which this node completed with them) stopped heartbeating or
     * left; {@code lost} holds only the newly lost ones.
     */
    void participantsLost(long round, Set<NodeDescriptor> lost);
  }
}
