package org.rdzv.etcd;

import java.time.Duration;
import java.util.Optional;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.api.Store;
import org.rdzv.dynamic.DynamicRendezvousHandler;
import org.rdzv.dynamic.RendezvousBackend;
import org.rdzv.dynamic.StateSnapshot;
import org.rdzv.dynamic.spi.RendezvousBackendProvider;

/**
 * Entry points of the etcd backends. Most programs use {@code RendezvousRegistry.handler(params)}
 * with backend {@code etcd}, {@code etcd-v2} or {@code etcd-v3}; these factories are for programs
 * that want a backend or store without the registry, and for tools. The handlers and reads are thin
 * fronts of the providers ({@link EtcdV2HandlerProvider}, {@link EtcdHandlerProvider}; etcd-v3's
 * are in module rdzv-etcd-v3: {@code EtcdV3Rendezvous}), the one implementation of each.
 */
public final class EtcdRendezvous {
  /** The etcd-v2 backend's state directory, {@code /torch/elastic/rendezvous}. */
  public static final String V2_STATE_PREFIX = "/torch/elastic/rendezvous";

  /** The etcd-v3 backend's state key prefix (a v3 key, {@code <prefix>/<run_id>}). */
  public static final String V3_STATE_PREFIX = "/torch/elastic/rendezvous";

  /** The etcd-v3 backend's store key prefix (v3 keys {@code <prefix>/<key>}). */
  public static final String V3_STORE_PREFIX = "/torch/elastic/store";

  /** The etcd-v2 backend's store directory, {@code /torch/elastic/store}, shared by every run. */
  public static final String V2_STORE_PREFIX = "/torch/elastic/store";

  private static final EtcdHandlerProvider LEGACY = new EtcdHandlerProvider();
  private static final EtcdV2HandlerProvider V2 = new EtcdV2HandlerProvider();

  private EtcdRendezvous() {}

  /**
   * PyTorch's legacy {@code etcd} handler ({@code etcd_rendezvous.py}); see {@link
   * EtcdHandlerProvider}. Creates the run's directories.
   *
   * @throws IllegalArgumentException for bad options, with PyTorch's messages
   * @throws RendezvousConnectionException naming the endpoints when etcd cannot be reached
   */
  public static RendezvousHandler legacyHandler(RendezvousParameters params) {
    return LEGACY.create(params);
  }

  /**
   * The JSON text of a legacy rendezvous' {@code active_version} key, read without writing
   * anything; empty when the run has no state. For status tools.
   *
   * @throws RendezvousConnectionException naming the endpoints when etcd cannot be reached
   */
  public static Optional<String> legacyState(RendezvousParameters params) {
    return LEGACY.readState(params);
  }

  /**
   * PyTorch's {@code EtcdStore} on etcd v2: keys {@code prefix/base64(key)}, base64 values,
   * blocking reads by watching. {@code timeout} null means c10d's default, 300 s.
   */
  public static Store v2Store(EtcdConnection connection, String prefix, Duration timeout) {
    return new EtcdV2Store(EtcdV2Client.create(connection), prefix, timeout);
  }

  /**
   * PyTorch's {@code etcd-v2} handler: the dynamic rendezvous with {@link #v2Backend} and the
   * shared {@code EtcdStore} under {@code /torch/elastic/store}; see {@link EtcdV2HandlerProvider}.
   * Checks that etcd answers before returning.
   *
   * @throws IllegalArgumentException for bad options, with PyTorch's messages
   * @throws RendezvousConnectionException naming the endpoints when etcd cannot be reached
   */
  public static DynamicRendezvousHandler v2Handler(RendezvousParameters params) {
    return V2.create(params);
  }

  /**
   * The {@code etcd-v2} state backend of {@code params.runId()}: base64 state under {@code
   * /torch/elastic/rendezvous/<run_id>}, TTL 7200 s, {@code prevIndex} compare-and-set, watch-based
   * {@link RendezvousBackend#awaitChange}. Does not contact etcd.
   */
  public static RendezvousBackend v2Backend(RendezvousParameters params) {
    return new EtcdV2Backend(
        EtcdV2Client.create(EtcdConnection.forDynamic(params)),
        params.runId(),
        V2_STATE_PREFIX,
        null);
  }

  /**
   * Reads the dynamic rendezvous state of {@code params.runId()} on an {@code etcd-v2} or {@code
   * etcd-v3} backend without writing anything; empty when there is none. For status tools.
   *
   * @throws IllegalArgumentException if {@code params.backend()} is neither
   * @throws RendezvousConnectionException naming the endpoints when etcd cannot be reached
   * @throws org.rdzv.api.RendezvousStateException if the stored state cannot be decoded
   */
  public static Optional<StateSnapshot> readState(RendezvousParameters params) {
    String name = params.backend();
    if (!name.equals("etcd-v2") && !name.equals("etcd-v3")) {
      throw new IllegalArgumentException(
          "readState reads etcd-v2 or etcd-v3 states, not '"
              + name
              + "'; for etcd use legacyState.");
    }
    // etcd-v3 lives in rdzv-etcd-v3 (it brings gRPC): found through the registry when present.
    RendezvousBackendProvider provider =
        name.equals(V2.name())
            ? V2
            : RendezvousRegistry.defaultRegistry().provider(name).orElse(null)
                    instanceof RendezvousBackendProvider found
                ? found
                : null;
    if (provider == null) {
      throw new IllegalStateException(
          "The rendezvous backend '"
              + name
              + "' is built in, but its module "
              + RendezvousRegistry.BUILT_INS.get(name)
              + " is not on the class path.");
    }
    return provider.readState(params).map(StateSnapshot::decode);
  }
}
