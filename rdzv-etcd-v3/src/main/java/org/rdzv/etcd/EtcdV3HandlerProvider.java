package org.rdzv.etcd;

import java.util.List;
import java.util.Optional;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.dynamic.RendezvousSettings;
import org.rdzv.dynamic.spi.CreatedBackend;
import org.rdzv.dynamic.spi.RendezvousBackendProvider;

/**
 * The {@code etcd-v3} backend (new in rdzv): the dynamic rendezvous state on a v3 key ({@code
 * /torch/elastic/rendezvous/<run_id>}, base64 as in etcd-v2, on a 7200 s lease) written by
 * revision-fenced transactions, and the store on v3 keys under {@code /torch/elastic/store/}; every
 * wait is a v3 watch. Same options as {@code etcd-v2} ({@link EtcdConnection#forDynamic}). The
 * handler holds one reference to the gRPC client, which every handler of this process with the same
 * connection options shares; closing the handler releases it.
 *
 * <p>With {@code protocol=scalable} the handler is the scalable protocol's, on an {@link
 * EtcdV3ScalableStore} ({@link #createScalableStore}). The {@code protocol} key is also PyTorch's
 * etcd transport ({@code http}/{@code https}); when it names the rendezvous protocol ({@code
 * scalable} or {@code pytorch}), the transport is {@code https} if {@code ssl_cert} or {@code
 * ca_cert} is given and {@code http} otherwise.
 */
public final class EtcdV3HandlerProvider implements RendezvousBackendProvider {
  @Override
  public String name() {
    return "etcd-v3";
  }

  /** Checks that etcd answers before returning. */
  @Override
  public CreatedBackend createBackend(RendezvousParameters params, RendezvousSettings settings) {
    EtcdV3Session session = EtcdV3Session.acquire(connection(params));
    try {
      EtcdV3Backend backend =
          new EtcdV3Backend(session, params.runId(), EtcdRendezvous.V3_STATE_PREFIX);
      EtcdV3Store store = new EtcdV3Store(session, EtcdRendezvous.V3_STORE_PREFIX, null, false);
      backend.getState();
      return new CreatedBackend(
          backend, store, List.of(store, CreatedBackend.once(session::release)));
    } catch (RuntimeException e) {
      session.release();
      throw e;
    }
  }

  /**
   * The scalable protocol's operations for {@code params.runId()}, on the same etcd and options as
   * {@link #createBackend}, sharing its gRPC client. Does not contact etcd (the first operation
   * does). With {@code readOnly}: answers within 5 s (or {@code read_timeout}, if shorter) and
   * refuses to write.
   */
  @Override
  public org.rdzv.dynamic.spi.ScalableStore createScalableStore(
      RendezvousParameters params, RendezvousSettings settings, boolean readOnly) {
    EtcdConnection connection = connection(params);
    if (readOnly && connection.readTimeout().compareTo(STATUS_TIMEOUT) > 0) {
      connection =
          new EtcdConnection(
              connection.endpoints(),
              connection.protocol(),
              STATUS_TIMEOUT,
              connection.clientCert(),
              connection.clientKey(),
              connection.caCert());
    }
    return new EtcdV3ScalableStore(EtcdV3Session.acquire(connection), params.runId(), readOnly);
  }

  /** The longest a status tool waits for one answer. */
  static final java.time.Duration STATUS_TIMEOUT = java.time.Duration.ofSeconds(5);

  /**
   * {@link EtcdConnection#forDynamic}, where a {@code protocol} that names the rendezvous protocol
   * rather than the transport means {@code https} when certificates are given, else {@code http}.
   */
  static EtcdConnection connection(RendezvousParameters params) {
    if (params.getString("protocol").flatMap(RendezvousBackendProvider::protocolName).isPresent()) {
      boolean tls =
          params.getString("ssl_cert").filter(v -> !v.isEmpty()).isPresent()
              || params.getString("ca_cert").filter(v -> !v.isEmpty()).isPresent();
      return EtcdConnection.forDynamic(params.with("protocol", tls ? "https" : "http"));
    }
    return EtcdConnection.forDynamic(params);
  }

  @Override
  public Optional<byte[]> readState(RendezvousParameters params) {
    EtcdV3Session session = EtcdV3Session.acquire(connection(params));
    try {
      return new EtcdV3Backend(session, params.runId(), EtcdRendezvous.V3_STATE_PREFIX)
          .getState()
          .map(s -> s.state());
    } finally {
      session.release();
    }
  }

  /** The notes under {@code /rdzv/v1/<E(run_id)>/node/}, one prefix read; writes nothing. */
  @Override
  public java.util.Map<org.rdzv.dynamic.NodeDescriptor, org.rdzv.dynamic.NodeNote> readNotes(
      RendezvousParameters params, java.util.Collection<org.rdzv.dynamic.NodeDescriptor> nodes) {
    EtcdV3Session session = EtcdV3Session.acquire(connection(params));
    try {
      return EtcdV3Backend.readNotes(session, params.runId());
    } finally {
      session.release();
    }
  }
}
