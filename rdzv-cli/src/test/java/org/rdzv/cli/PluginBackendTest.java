package org.rdzv.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.rdzv.api.Endpoint;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.Store;
import org.rdzv.dynamic.RendezvousBackend;
import org.rdzv.dynamic.RendezvousSettings;
import org.rdzv.dynamic.spi.CreatedBackend;
import org.rdzv.dynamic.spi.RendezvousBackendProvider;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreServer;

/**
 * A third-party dynamic-rendezvous backend, found through {@code META-INF/services} like any
 * plug-in: {@code rdzv join} forms a round over it and {@code rdzv status} shows it, though the CLI
 * knows nothing of it.
 */
class PluginBackendTest {
  TcpStoreServer server;
  final String runId = "plugin-" + UUID.randomUUID();

  @BeforeEach
  void start() {
    server = TcpStoreServer.start("", 0);
  }

  @AfterEach
  void stop() {
    server.close();
  }

  @Test
  void aPluginBackendJoinsAndShowsInStatus() {
    String endpoint = "127.0.0.1:" + server.port();
    CliTest.Result joined =
        CliTest.rdzv(
            "join",
            "--rdzv-backend",
            "kv-test",
            "--rdzv-endpoint",
            endpoint,
            "--rdzv-id",
            runId,
            "--nnodes",
            "1",
            "--rdzv-conf",
            "last_call_timeout=1,join_timeout=30");
    assertThat(joined.exit()).as(joined.err()).isZero();
    assertThat(joined.out()).startsWith("rank=0 world_size=1 round=0 node=");
    CliTest.Result status =
        CliTest.rdzv(
            "status", "--rdzv-backend", "kv-test", "--rdzv-endpoint", endpoint, "--rdzv-id", runId);
    assertThat(status.exit()).as(status.err()).isZero();
    // The node left after its round: the next round is open and empty.
    assertThat(status.out())
        .startsWith("run_id=" + runId + " round=1 complete=false closed=false")
        .contains("participants=0");
    CliTest.Result json =
        CliTest.rdzv(
            "status",
            "--rdzv-backend",
            "kv-test",
            "--rdzv-endpoint",
            endpoint,
            "--rdzv-id",
            runId,
            "--json");
    assertThat(json.out()).startsWith("{\"run_id\": \"" + runId + "\", \"round\": 1");
  }

  /** The state under one key of a TCP store, fenced by the whole previous value. */
  public static final class KvPlugin implements RendezvousBackendProvider {
    @Override
    public String name() {
      return "kv-test";
    }

    @Override
    public CreatedBackend createBackend(RendezvousParameters params, RendezvousSettings settings) {
      TcpStore store = connect(params);
      return new CreatedBackend(new KvBackend(store, params.runId()), store, List.of(store));
    }

    @Override
    public Optional<byte[]> readState(RendezvousParameters params) {
      try (TcpStore store = connect(params)) {
        return new KvBackend(store, params.runId()).getState().map(RendezvousBackend.State::state);
      }
    }

    private static TcpStore connect(RendezvousParameters params) {
      Endpoint endpoint = Endpoint.parse(params.endpoint(), 0);
      return TcpStore.connect(endpoint.host(), endpoint.port());
    }
  }

  private record KvBackend(Store store, String runId) implements RendezvousBackend {
    @Override
    public String name() {
      return "kv-test";
    }

    private String key() {
      return "kv-test/" + runId;
    }

    @Override
    public Optional<State> getState() {
      if (!store.check(List.of(key()))) {
        return Optional.empty();
      }
      byte[] value = store.get(key());
      return Optional.of(new State(value, value));
    }

    @Override
    public Optional<SetResult> setState(byte[] state, Object token) {
      byte[] expected = token == null ? new byte[0] : (byte[]) token;
      byte[] stored = store.compareSet(key(), expected, state);
      return Optional.of(new SetResult(stored, stored, Arrays.equals(stored, state)));
    }
  }
}
