package org.rdzv.dynamic;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import java.util.Objects;
import java.util.Set;
import java.util.stream.Collectors;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.Store;
import org.rdzv.api.events.NodeState;
import org.rdzv.dynamic.spi.CreatedBackend;
import org.rdzv.dynamic.spi.RendezvousBackendProvider;

/**
 * PyTorch's {@code DynamicRendezvousHandler}: nodes join rounds through one shared state held by a
 * {@link RendezvousBackend}, sharing it with real PyTorch nodes of the same state dialect.
 *
 * <p>Beyond {@link RendezvousHandler} (which already lets any node {@linkplain #leave() leave},
 * {@linkplain #addListener(RendezvousHandler.Listener) hear of lost participants} and {@linkplain
 * #close() release} the handler), a dynamic handler names its node with a {@link NodeDescriptor},
 * reports lost participants as descriptors, and reads the {@linkplain #state() state}. Thread-safe:
 * operations hold one lock, released while an operation waits for others, so {@link
 * #numNodesWaiting()} or {@link #state()} answer during a long {@link #nextRendezvous()}.
 *
 * <p>A handler records PyTorch's rendezvous events ({@link org.rdzv.api.events.RdzvEvent}, named
 * and worded as PyTorch's {@code dynamic_rendezvous.py} records them) to {@link
 * org.rdzv.api.events.Events}, and Micrometer meters ({@code rdzv_rendezvous_*}: rounds, join
 * latency, participants, waiting nodes, heartbeats, lost participants, write conflicts) to the
 * registry it was created with, by default {@link Metrics#globalRegistry}, which keeps nothing
 * until a registry is added to it. Its meters are removed when the last handler of the rendezvous
 * in the process closes.
 */
public interface DynamicRendezvousHandler extends RendezvousHandler {

  /**
   * PyTorch's {@code create_backend} then {@code create_handler}: reads the dynamic rendezvous
   * settings from {@code params} once ({@link RendezvousSettings#from}, so bad options fail before
   * any network access), asks {@code provider} for the backend and store ({@link
   * RendezvousBackendProvider#createBackend}), and builds the handler, which owns what the provider
   * created: {@link #close()} releases it.
   *
   * @throws IllegalArgumentException for invalid parameters, with PyTorch's messages
   * @throws org.rdzv.api.RendezvousConnectionException if the backend cannot be reached
   */
  static DynamicRendezvousHandler create(
      RendezvousBackendProvider provider, RendezvousParameters params) {
    return create(provider, params, Metrics.globalRegistry);
  }

  /**
   * As {@link #create(RendezvousBackendProvider, RendezvousParameters)}, recording the handler's
   * meters ({@code rdzv_rendezvous_*}, see docs/observability.md) into {@code meters} instead of
   * Micrometer's global registry. Invalid settings are recorded as PyTorch's {@code create_handler}
   * records them (an {@link org.rdzv.api.events.RdzvEvent} of state FAILED).
   */
  static DynamicRendezvousHandler create(
      RendezvousBackendProvider provider, RendezvousParameters params, MeterRegistry meters) {
    Objects.requireNonNull(meters, "meters");
    RendezvousSettings settings;
    try {
      settings = RendezvousSettings.from(params);
    } catch (RuntimeException e) {
      RendezvousEvents.function(
          "dynamic_rendezvous.py",
          "create_handler",
          params.runId(),
          RendezvousEvents.describe(e),
          NodeState.FAILED,
          e);
      throw e;
    }
    if (RendezvousBackendProvider.scalable(params)) {
      return ScalableHandler.create(provider, params, settings);
    }
    CreatedBackend created = provider.createBackend(params, settings);
    try {
      return DynamicHandler.create(created, settings, params.localAddr(), meters);
    } catch (RuntimeException e) {
      created.close();
      throw e;
    }
  }

  /**
   * Creates a handler over any backend: PyTorch's {@code create_handler(store, backend, params)}.
   * Reads PyTorch's config keys ({@code join_timeout}, {@code last_call_timeout}, {@code
   * close_timeout}, {@code heartbeat_timeout}, {@code keep_alive_interval}, {@code
   * keep_alive_max_attempt}) and the Java-only {@code state_dialect} and {@code rank_order}. Does
   * not contact the backend.
   *
   * @param store the store returned (round-prefixed) to callers; the backend and the store stay the
   *     caller's: {@link #close()} does not close them
   * @throws IllegalArgumentException for invalid parameters, with PyTorch's message
   */
  static DynamicRendezvousHandler create(
      RendezvousBackend backend, Store store, RendezvousParameters params) {
    return create(backend, store, params, Metrics.globalRegistry);
  }

  /**
   * As {@link #create(RendezvousBackend, Store, RendezvousParameters)}, recording the handler's
   * meters into {@code meters} instead of Micrometer's global registry.
   */
  static DynamicRendezvousHandler create(
      RendezvousBackend backend, Store store, RendezvousParameters params, MeterRegistry meters) {
    return DynamicHandler.create(
        CreatedBackend.unowned(backend, store),
        RendezvousSettings.from(params),
        params.localAddr(),
        Objects.requireNonNull(meters, "meters"));
  }

  /** This node's descriptor. */
  NodeDescriptor node();

  /**
   * {@code host_pid_localId}: the {@linkplain NodeDescriptor#toString() repr} of {@link #node()}.
   */
  @Override
  default String nodeName() {
    return node().toString();
  }

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
  @Override
  void leave();

  /** Participants of this node's current, completed round that are gone (left or dead). */
  Set<NodeDescriptor> lostParticipants();

  /**
   * Registers a listener told, with descriptors, when participants of this node's completed round
   * disappear — found by this node's heartbeat or any other sync. As {@link
   * #addListener(RendezvousHandler.Listener)}: runs on the thread that noticed, outside the
   * handler's lock; must not block.
   */
  default void addListener(NodeListener listener) {
    addListener((RendezvousHandler.Listener) listener);
  }

  default void removeListener(NodeListener listener) {
    removeListener((RendezvousHandler.Listener) listener);
  }

  /**
   * Stops heartbeating and releases what this handler owns: a store it created, a hosted server,
   * the backend's connections, and the bootstrap store server it runs as rank 0 under a 2.x dialect
   * ({@link #shutdown()} stops that one too). Idempotent.
   */
  @Override
  void close();

  /** A {@link RendezvousHandler.Listener} that receives the lost nodes as descriptors. */
  @FunctionalInterface
  interface NodeListener extends RendezvousHandler.Listener {
    /**
     * Participants of {@code round} (which this node completed with them) stopped heartbeating or
     * left; {@code lost} holds only the newly lost ones.
     */
    void nodesLost(long round, Set<NodeDescriptor> lost);

    /** Parses the names back into descriptors (a dynamic handler calls {@link #nodesLost}). */
    @Override
    default void participantsLost(long round, Set<String> lost) {
      nodesLost(
          round,
          lost.stream()
              .map(NodeDescriptor::parse)
              .flatMap(java.util.Optional::stream)
              .collect(Collectors.toUnmodifiableSet()));
    }
  }
}
