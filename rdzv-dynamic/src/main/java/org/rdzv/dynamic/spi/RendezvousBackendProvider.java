package org.rdzv.dynamic.spi;

import java.util.Collection;
import java.util.Map;
import java.util.Optional;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousStatus;
import org.rdzv.api.spi.RendezvousHandlerProvider;
import org.rdzv.dynamic.DynamicRendezvousHandler;
import org.rdzv.dynamic.NodeDescriptor;
import org.rdzv.dynamic.NodeNote;
import org.rdzv.dynamic.RendezvousSettings;
import org.rdzv.dynamic.StateSnapshot;

/**
 * A backend of PyTorch's dynamic rendezvous, in PyTorch's shape: {@link #createBackend} is the
 * backend module's {@code create_backend(params)}, and {@link #create} then does {@code
 * create_handler(store, backend, params)}. The built-in {@code c10d}, {@code etcd-v2} and {@code
 * etcd-v3} backends are providers of this kind, and a plug-in is one more: list the class in {@code
 * META-INF/services/org.rdzv.api.spi.RendezvousHandlerProvider}, and {@code
 * RendezvousRegistry.handler(params)}, {@code rdzv run}, {@code rdzv join} and {@code rdzv status}
 * find it by {@link #name()}.
 *
 * <p>A provider implements three methods: {@link #name()}, {@link #createBackend} and {@link
 * #readState}; the handler and the status come with it. Providers are instantiated once (public
 * no-argument constructor) and must be thread-safe.
 */
public interface RendezvousBackendProvider extends RendezvousHandlerProvider {

  /**
   * The backend name, as users select it and as {@link org.rdzv.dynamic.RendezvousBackend#name()}
   * reports it (e.g. {@code c10d}).
   */
  @Override
  String name();

  /**
   * PyTorch's {@code create_backend(params)}: the backend over which the state is shared, the store
   * the nodes share, and what the handler owns. Called once per handler, after {@code settings}
   * were read from {@code params} (so invalid dynamic-rendezvous options fail before any network
   * access); reads its own options from {@code params}. May block while it connects (up to its read
   * timeout) and may host a server. Does not join.
   *
   * @throws IllegalArgumentException for invalid options, with PyTorch's messages
   * @throws org.rdzv.api.RendezvousConnectionException if the backend cannot be reached or hosted
   */
  CreatedBackend createBackend(RendezvousParameters params, RendezvousSettings settings);

  /**
   * Reads the stored state of {@code params.runId()} (the pickled bytes, as {@link
   * org.rdzv.dynamic.RendezvousBackend#getState()} returns them) without joining, hosting or
   * writing anything: no sentinel, no counters, no keep-alive. Empty when there is no state. For
   * status tools; opens and closes its own connections; blocks up to the backend's read timeout.
   *
   * @throws IllegalArgumentException for invalid options
   * @throws org.rdzv.api.RendezvousConnectionException if the backend cannot be reached
   * @throws org.rdzv.api.RendezvousStateException if the stored value is not a state envelope
   */
  Optional<byte[]> readState(RendezvousParameters params);

  /**
   * The operations of the scalable protocol ({@code --rdzv-conf protocol=scalable}) for {@code
   * params.runId()} on this backend: what a node uses to join, heartbeat and learn its rank, each
   * at O(1) cost. Called once per handler (and by status tools with {@code readOnly}); may share
   * connections among the handlers of one process. With {@code readOnly} it hosts nothing and
   * answers within a few seconds.
   *
   * <p>The default refuses: a backend offers the scalable protocol by overriding this ({@code c10d}
   * and {@code etcd-v3} do).
   *
   * @throws IllegalArgumentException if this backend has no scalable protocol, or for invalid
   *     options
   * @throws org.rdzv.api.RendezvousConnectionException if the backend cannot be reached or hosted
   */
  default ScalableStore createScalableStore(
      RendezvousParameters params, RendezvousSettings settings, boolean readOnly) {
    throw new IllegalArgumentException(
        "The rendezvous backend '"
            + name()
            + "' does not support protocol=scalable; use the c10d or etcd-v3 backend, or"
            + " protocol=pytorch.");
  }

  /**
   * {@code create_backend} then {@code create_handler}: see {@link
   * DynamicRendezvousHandler#create(RendezvousBackendProvider, RendezvousParameters)}.
   */
  @Override
  default DynamicRendezvousHandler create(RendezvousParameters params) {
    return DynamicRendezvousHandler.create(this, params);
  }

  /**
   * Whether {@code params} choose the scalable protocol: {@code protocol=scalable}, or {@code
   * rendezvous_protocol=scalable} (for etcd backends, whose {@code protocol} key is PyTorch's
   * {@code http}/{@code https} scheme). Any other value of {@code protocol} is the backend's to
   * read ({@code c10d} refuses values other than {@code pytorch} and {@code scalable}).
   *
   * @throws IllegalArgumentException if {@code rendezvous_protocol} is neither {@code pytorch} nor
   *     {@code scalable}
   */
  static boolean scalable(RendezvousParameters params) {
    String explicit = params.getString("rendezvous_protocol").orElse(null);
    if (explicit != null) {
      return protocolName(explicit)
          .orElseThrow(() -> notAProtocol("rendezvous_protocol", explicit))
          .equals("scalable");
    }
    return params.getString("protocol").flatMap(RendezvousBackendProvider::protocolName).stream()
        .anyMatch("scalable"::equals);
  }

  /**
   * {@code value} as a rendezvous protocol's name ({@code pytorch}, {@code scalable}), if it is.
   */
  static java.util.Optional<String> protocolName(String value) {
    String p = value.strip().toLowerCase(java.util.Locale.ROOT);
    return p.equals("pytorch") || p.equals("scalable")
        ? java.util.Optional.of(p)
        : java.util.Optional.empty();
  }

  /** The one-line error for a config {@code key} whose {@code value} names no protocol. */
  static IllegalArgumentException notAProtocol(String key, String value) {
    return new IllegalArgumentException(
        "The rendezvous config " + key + " must be 'pytorch' or 'scalable', not '" + value + "'.");
  }

  /**
   * Reads the notes ({@link org.rdzv.dynamic.RendezvousBackend#publishNote}) of {@code nodes} (a
   * backend may return others too) without writing anything, for status tools. The default has
   * none. A failure is for the caller to ignore: notes are hints.
   *
   * @throws org.rdzv.api.RendezvousConnectionException if the backend cannot be reached
   */
  default Map<NodeDescriptor, NodeNote> readNotes(
      RendezvousParameters params, Collection<NodeDescriptor> nodes) {
    return Map.of();
  }

  /**
   * {@link #readState}, decoded ({@link StateSnapshot#decode}) and shown as a dynamic state, with
   * the node range and join deadlines the nodes' notes give ({@link #readNotes}; without them,
   * unknown).
   */
  @Override
  default Optional<RendezvousStatus> readStatus(RendezvousParameters params) {
    Optional<byte[]> state = readState(params);
    if (state.isPresent() && org.rdzv.dynamic.ScalableStatus.isFence(state.get())) {
      // The run id belongs to the scalable protocol: its keys tell the status.
      return org.rdzv.dynamic.ScalableStatus.read(this, params);
    }
    return state
        .map(StateSnapshot::decode)
        .map(
            s -> {
              Map<NodeDescriptor, NodeNote> notes;
              try {
                notes = readNotes(params, s.nodes());
              } catch (RuntimeException e) {
                notes = Map.of(); // the state alone still shows
              }
              return s.toStatus(params.runId(), notes);
            });
  }
}
