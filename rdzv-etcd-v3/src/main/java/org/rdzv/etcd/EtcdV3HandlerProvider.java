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
 */
public final class EtcdV3HandlerProvider implements RendezvousBackendProvider {
  @Override
  public String name() {
    return "etcd-v3";
  }

  /** Checks that etcd answers before returning. */
  @Override
  public CreatedBackend createBackend(RendezvousParameters params, RendezvousSettings settings) {
    EtcdV3Session session = EtcdV3Session.acquire(EtcdConnection.forDynamic(params));
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

  @Override
  public Optional<byte[]> readState(RendezvousParameters params) {
    EtcdV3Session session = EtcdV3Session.acquire(EtcdConnection.forDynamic(params));
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
    EtcdV3Session session = EtcdV3Session.acquire(EtcdConnection.forDynamic(params));
    try {
      return EtcdV3Backend.readNotes(session, params.runId());
    } finally {
      session.release();
    }
  }
}
