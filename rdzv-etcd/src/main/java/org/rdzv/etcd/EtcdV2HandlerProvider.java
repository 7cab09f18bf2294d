package org.rdzv.etcd;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.dynamic.NodeDescriptor;
import org.rdzv.dynamic.NodeNote;
import org.rdzv.dynamic.RendezvousSettings;
import org.rdzv.dynamic.spi.CreatedBackend;
import org.rdzv.dynamic.spi.RendezvousBackendProvider;

/**
 * The {@code etcd-v2} backend: PyTorch's {@code etcd_rendezvous_backend.create_backend}. The state
 * is base64 under {@code /torch/elastic/rendezvous/<run_id>} (TTL 7200 s, {@code prevIndex}
 * compare-and-set, watch-based waits) and the store is PyTorch's {@code EtcdStore} under the shared
 * {@code /torch/elastic/store}. Options: {@link EtcdConnection#forDynamic}.
 */
public final class EtcdV2HandlerProvider implements RendezvousBackendProvider {
  @Override
  public String name() {
    return "etcd-v2";
  }

  /** Checks that etcd answers before returning: a clear connection error now, not at the join. */
  @Override
  public CreatedBackend createBackend(RendezvousParameters params, RendezvousSettings settings) {
    EtcdV2Client client = EtcdV2Client.create(EtcdConnection.forDynamic(params));
    EtcdV2Backend backend =
        new EtcdV2Backend(client, params.runId(), EtcdRendezvous.V2_STATE_PREFIX, null);
    EtcdV2Store store = new EtcdV2Store(client, EtcdRendezvous.V2_STORE_PREFIX, null);
    backend.getState();
    // The HTTP client is shared by the process and needs no closing.
    return new CreatedBackend(backend, store, List.of(store));
  }

  @Override
  public Optional<byte[]> readState(RendezvousParameters params) {
    return new EtcdV2Backend(
            EtcdV2Client.create(EtcdConnection.forDynamic(params)),
            params.runId(),
            EtcdRendezvous.V2_STATE_PREFIX,
            null)
        .getState()
        .map(s -> s.state());
  }

  /** The notes under {@code /rdzv/v1/<E(run_id)>/node}, one listing; writes nothing. */
  @Override
  public Map<NodeDescriptor, NodeNote> readNotes(
      RendezvousParameters params, Collection<NodeDescriptor> nodes) {
    return EtcdV2Backend.readNotes(
        EtcdV2Client.create(EtcdConnection.forDynamic(params)), params.runId());
  }
}
