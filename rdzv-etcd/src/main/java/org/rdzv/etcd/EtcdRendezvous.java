package org.rdzv.etcd;

import java.time.Duration;
import java.util.Optional;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.Store;
import org.rdzv.dynamic.DynamicRendezvousHandler;
import org.rdzv.dynamic.RendezvousBackend;
import org.rdzv.dynamic.StateSnapshot;

/**
 * Entry points of the etcd backends. Most programs use {@code RendezvousRegistry.handler(params)}
 * with backend {@code etcd}, {@code etcd-v2} or {@code etcd-v3}; these factories are for programs
 * that want a backend without the registry, and for tools (status, benchmarks).
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

  private EtcdRendezvous() {}

  /**
   * PyTorch's legacy {@code etcd} handler ({@code etcd_rendezvous.py}): options {@code timeout}
   * (600 s), {@code last_call_timeout} (30 s), {@code etcd_prefix} ({@code /torchelastic/p2p}),
   * {@code protocol}, {@code cert}, {@code key}, {@code cacert}. Creates the run's directories.
   *
   * @throws IllegalArgumentException for bad options, with PyTorch's messages
   * @throws RendezvousConnectionException naming the endpoints when etcd cannot be reached
   */
  public static RendezvousHandler legacyHandler(RendezvousParameters params) {
    EtcdConnection connection = EtcdConnection.forLegacy(params);
    return new LegacyEtcdRendezvousHandler(EtcdV2Client.create(connection), params);
  }

  /**
   * The JSON text of a legacy rendezvous' {@code active_version} key, read without writing
   * anything; empty when the run has no state. For status tools.
   *
   * @throws RendezvousConnectionException naming the endpoints when etcd cannot be reached
   */
  public static Optional<String> legacyState(RendezvousParameters params) {
    EtcdV2Client client = EtcdV2Client.create(EtcdConnection.forLegacy(params));
    String prefix =
        params.getString("etcd_prefix").orElse(LegacyEtcdRendezvousHandler.DEFAULT_PREFIX);
    prefix = prefix.endsWith("/") ? prefix : prefix + "/";
    try {
      return Optional.ofNullable(
          client
              .get(prefix + "run_" + params.runId() + "/rdzv/active_version", false)
              .node()
              .value());
    } catch (EtcdV2Exception e) {
      if (e.keyNotFound()) {
        return Optional.empty();
      }
      throw new RendezvousConnectionException(e.getMessage(), e);
    }
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
   * shared {@code EtcdStore} under {@code /torch/elastic/store}. Options as {@link
   * EtcdConnection#forDynamic} plus the dynamic handler's ({@code join_timeout}, {@code
   * last_call_timeout}, ...). Checks that etcd answers before returning.
   *
   * @throws IllegalArgumentException for bad options, with PyTorch's messages
   * @throws RendezvousConnectionException naming the endpoints when etcd cannot be reached
   */
  public static DynamicRendezvousHandler v2Handler(RendezvousParameters params) {
    EtcdV2Client client = EtcdV2Client.create(EtcdConnection.forDynamic(params));
    EtcdV2Backend backend = new EtcdV2Backend(client, params.runId(), V2_STATE_PREFIX, null);
    EtcdV2Store store = new EtcdV2Store(client, V2_STORE_PREFIX, null);
    DynamicRendezvousHandler handler = DynamicRendezvousHandler.create(backend, store, params);
    backend.getState(); // a clear connection error now rather than at the first join
    return handler;
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
   * The {@code etcd-v3} handler (new in rdzv): the dynamic rendezvous state on a v3 key ({@code
   * /torch/elastic/rendezvous/<run_id>}, base64 as in etcd-v2, on a 7200 s lease) written by
   * revision-fenced transactions, and the store on v3 keys under {@code /torch/elastic/store/};
   * every wait is a v3 watch. Same options as {@code etcd-v2}. {@link
   * DynamicRendezvousHandler#close()} releases the gRPC client (shared by every handler of this
   * process with the same connection options). Checks that etcd answers before returning.
   *
   * @throws IllegalArgumentException for bad options
   * @throws RendezvousConnectionException naming the endpoints when etcd cannot be reached
   */
  public static DynamicRendezvousHandler v3Handler(RendezvousParameters params) {
    EtcdConnection connection = EtcdConnection.forDynamic(params);
    EtcdV3Session session = EtcdV3Session.acquire(connection);
    try {
      EtcdV3Backend backend = new EtcdV3Backend(session, params.runId(), V3_STATE_PREFIX);
      EtcdV3Store store = new EtcdV3Store(session, V3_STORE_PREFIX, null, false);
      DynamicRendezvousHandler handler =
          new OwningHandler(
              DynamicRendezvousHandler.create(backend, store, params), session::release);
      backend.getState();
      return handler;
    } catch (RuntimeException e) {
      session.release();
      throw e;
    }
  }

  /**
   * A store on etcd v3 keys {@code prefix/<key>} with raw values; {@link Store#close()} releases
   * its gRPC client. {@code timeout} null means 300 s.
   */
  public static Store v3Store(EtcdConnection connection, String prefix, Duration timeout) {
    return new EtcdV3Store(EtcdV3Session.acquire(connection), prefix, timeout, true);
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
    switch (params.backend()) {
      case "etcd-v2" -> {
        return v2Backend(params).getState().map(s -> StateSnapshot.decode(s.state()));
      }
      case "etcd-v3" -> {
        EtcdV3Session session = EtcdV3Session.acquire(EtcdConnection.forDynamic(params));
        try {
          return new EtcdV3Backend(session, params.runId(), V3_STATE_PREFIX)
              .getState()
              .map(s -> StateSnapshot.decode(s.state()));
        } finally {
          session.release();
        }
      }
      default ->
          throw new IllegalArgumentException(
              "readState reads etcd-v2 or etcd-v3 states, not '"
                  + params.backend()
                  + "'; for etcd use legacyState.");
    }
  }
}
