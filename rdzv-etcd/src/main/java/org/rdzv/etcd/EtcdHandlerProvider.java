package org.rdzv.etcd;

import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousStatus;
import org.rdzv.api.internal.Json;
import org.rdzv.api.spi.RendezvousHandlerProvider;

/**
 * PyTorch's legacy {@code etcd} handler ({@code etcd_rendezvous.py}): options {@code timeout} (600
 * s), {@code last_call_timeout} (30 s), {@code etcd_prefix} ({@code /torchelastic/p2p}), {@code
 * protocol}, {@code cert}, {@code key}, {@code cacert} ({@link EtcdConnection#forLegacy}). Its
 * status is the JSON of the run's {@code active_version} key, as stored.
 */
public final class EtcdHandlerProvider implements RendezvousHandlerProvider {
  @Override
  public String name() {
    return "etcd";
  }

  /** Creates the run's directories. */
  @Override
  public RendezvousHandler create(RendezvousParameters parameters) {
    EtcdConnection connection = EtcdConnection.forLegacy(parameters);
    return new LegacyEtcdRendezvousHandler(EtcdV2Client.create(connection), parameters);
  }

  /** {@code run_id=<id> state=<JSON as stored>}: the legacy state is JSON, not a dynamic state. */
  @Override
  public Optional<RendezvousStatus> readStatus(RendezvousParameters parameters) {
    return readState(parameters).map(json -> new LegacyStatus(parameters.runId(), json));
  }

  /**
   * The JSON text of the run's {@code active_version} key, read without writing anything; empty
   * when the run has no state.
   *
   * @throws org.rdzv.api.RendezvousConnectionException naming the endpoints when etcd cannot be
   *     reached
   */
  Optional<String> readState(RendezvousParameters params) {
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
      throw new org.rdzv.api.RendezvousConnectionException(e.getMessage(), e);
    }
  }

  /** The legacy state as stored: {@code run_id=<id> state=<json>}. */
  private record LegacyStatus(String runId, String json) implements RendezvousStatus {
    @Override
    public List<String> lines(Instant now) {
      return List.of("run_id=" + runId + " state=" + json);
    }

    @Override
    public String toJson(Instant now) {
      return "{\"run_id\": " + Json.quote(runId) + ", \"state\": " + json + "}";
    }
  }
}
