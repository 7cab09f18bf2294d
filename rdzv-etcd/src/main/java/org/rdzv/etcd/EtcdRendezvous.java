package org.rdzv.etcd;

import java.time.Duration;
import java.util.Optional;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.Store;

/**
 * Entry points of the etcd backends. Most programs use {@code RendezvousRegistry.handler(params)}
 * with backend {@code etcd}, {@code etcd-v2} or {@code etcd-v3}; these factories are for programs
 * that want a backend without the registry, and for tools (status, benchmarks).
 */
public final class EtcdRendezvous {
  /** The etcd-v2 backend's state directory, {@code /torch/elastic/rendezvous}. */
  public static final String V2_STATE_PREFIX = "/torch/elastic/rendezvous";

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
    String prefix = params.getString("etcd_prefix").orElse(LegacyEtcdRendezvousHandler.DEFAULT_PREFIX);
    prefix = prefix.endsWith("/") ? prefix : prefix + "/";
    try {
      return Optional.ofNullable(
          client.get(prefix + "run_" + params.runId() + "/rdzv/active_version", false).node().value());
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
}
