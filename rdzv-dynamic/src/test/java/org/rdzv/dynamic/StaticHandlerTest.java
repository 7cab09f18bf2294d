package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.testing.FreePort;

/**
 * The static handler: rank from config, world size max_nodes, rank 0 hosts, PrefixStore(run_id).
 */
class StaticHandlerTest {
  static RendezvousParameters params(String endpoint, Object rank) {
    return new RendezvousParameters(
        "static", endpoint, "st1", 2, 2, null, Map.of("rank", rank, "timeout", "30"));
  }

  @Test
  void rankZeroHostsAndBothShareThePrefixedStore() throws Exception {
    int port = FreePort.next();
    String endpoint = "127.0.0.1:" + port;
    RendezvousHandler zero = RendezvousRegistry.handler(params(endpoint, 0));
    RendezvousHandler one = RendezvousRegistry.handler(params(endpoint, "1"));
    try (var pool = Executors.newVirtualThreadPerTaskExecutor()) {
      var f0 = CompletableFuture.supplyAsync(zero::nextRendezvous, pool);
      RendezvousInfo i0 = f0.get(30, TimeUnit.SECONDS);
      RendezvousInfo i1 =
          CompletableFuture.supplyAsync(one::nextRendezvous, pool).get(30, TimeUnit.SECONDS);
      assertThat(i0.rank()).isZero();
      assertThat(i1.rank()).isEqualTo(1);
      assertThat(i0.worldSize()).isEqualTo(2);
      assertThat(i1.bootstrapStoreInfo()).isEqualTo(new RendezvousStoreInfo("127.0.0.1", port));
      i1.store().set("k", "v");
      assertThat(i0.store().getString("k")).isEqualTo("v");
      assertThat(zero.useAgentStore()).isTrue();
      assertThat(zero.numNodesWaiting()).isZero();
      assertThat(zero.isClosed()).isFalse();
      assertThat(zero.shutdown()).isTrue();
      assertThat(zero.backend()).isEqualTo("static");
    } finally {
      ((AutoCloseable) one).close();
      ((AutoCloseable) zero).close();
    }
  }

  @Test
  void pyTorchsChecksAndMessages() {
    assertThatThrownBy(
            () -> RendezvousRegistry.handler(new RendezvousParameters("static", "h:1", "r", 1, 1)))
        .hasMessage(
            "rank is absent in RendezvousParameters.Try add --node_rank to the cmd request");
    assertThatThrownBy(() -> RendezvousRegistry.handler(params("", 0)))
        .hasMessage(
            "endpoint is absent in RendezvousParametersTry add --master_port and --master_addr to the cmd request");
    assertThatThrownBy(() -> RendezvousRegistry.handler(params("host", 0)))
        .hasMessage("Port is absent in endpoint: host. Try launching with --master_port");
  }
}
