package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.api.StoreException;
import org.rdzv.dynamic.spi.CreatedBackend;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreOptions;
import org.rdzv.store.TcpStoreServer;

/**
 * The bootstrap store of 2.x dialects ({@code MASTER_ADDR}/{@code MASTER_PORT}): served by rank 0,
 * fresh every round on the same port, owned by the handler; none under 1.13.
 */
class BootstrapStoreTest {
  TcpStoreServer server;
  final List<DynamicHandler> handlers = new ArrayList<>();
  final List<TcpStore> clients = new ArrayList<>();
  final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
  final String runId = "boot-" + UUID.randomUUID();

  @BeforeEach
  void start() {
    server = TcpStoreServer.start("", 0);
  }

  @AfterEach
  void stop() {
    clients.forEach(TcpStore::close);
    handlers.forEach(DynamicHandler::close);
    pool.shutdownNow();
    server.close();
  }

  DynamicHandler handler(int nodes, boolean share, Map<String, Object> extra) {
    Map<String, Object> config =
        new java.util.HashMap<>(Map.of("last_call_timeout", "1", "join_timeout", "30"));
    config.putAll(extra);
    RendezvousParameters params =
        new RendezvousParameters(
            "c10d", "127.0.0.1:" + server.port(), runId, nodes, nodes, "127.0.0.1", config);
    TcpStore store = client(server.port());
    C10dBackend backend = new C10dBackend(store, runId, true);
    DynamicHandler h =
        new DynamicHandler(
            DynamicHandler.newNode(params.localAddr()),
            RendezvousSettings.from(params),
            new CreatedBackend(backend, store, List.of(backend)),
            Clock.SYSTEM,
            share);
    handlers.add(h);
    return h;
  }

  TcpStore client(int port) {
    TcpStore c =
        TcpStore.connect(
            TcpStoreOptions.builder("127.0.0.1", port).timeout(Duration.ofSeconds(10)).build());
    clients.add(c);
    return c;
  }

  List<RendezvousInfo> round(List<DynamicHandler> hs) throws Exception {
    List<CompletableFuture<RendezvousInfo>> fs = new ArrayList<>();
    for (DynamicHandler h : hs) {
      fs.add(CompletableFuture.supplyAsync(h::nextRendezvous, pool));
    }
    List<RendezvousInfo> infos = new ArrayList<>();
    for (var f : fs) {
      infos.add(f.get(60, TimeUnit.SECONDS));
    }
    return infos;
  }

  static DynamicHandler rankZero(List<DynamicHandler> hs, List<RendezvousInfo> infos) {
    for (int i = 0; i < hs.size(); i++) {
      if (infos.get(i).rank() == 0) {
        return hs.get(i);
      }
    }
    throw new AssertionError("no rank 0");
  }

  @Test
  void rank0ServesAFreshStoreEveryRoundOnTheSamePort() throws Exception {
    List<DynamicHandler> hs = List.of(handler(2, true, Map.of()), handler(2, true, Map.of()));
    List<RendezvousInfo> first = round(hs);
    RendezvousStoreInfo info = first.get(0).bootstrapStoreInfo();
    assertThat(info).isNotNull().isEqualTo(first.get(1).bootstrapStoreInfo());
    assertThat(info.masterAddr()).isEqualTo("127.0.0.1");
    assertThat(hs).allMatch(DynamicHandler::useAgentStore);
    DynamicHandler owner = rankZero(hs, first);
    assertThat(owner.bootstrapServer())
        .hasValueSatisfying(s -> assertThat(s.port()).isEqualTo(info.masterPort()));
    // rank 0 also published the address in the round's prefix, as PyTorch's build does
    assertThat(first.get(0).store().getString(RendezvousStoreInfo.MASTER_PORT_KEY))
        .isEqualTo(Integer.toString(info.masterPort()));

    // a worker of round 0 writes into the bootstrap store
    TcpStore worker = client(info.masterPort());
    worker.set("stale", "from round 0");
    assertThat(worker.getString("stale")).isEqualTo("from round 0"); // SET has no reply
    assertThat(owner.bootstrapServer().orElseThrow().numKeys()).isEqualTo(1);

    List<RendezvousInfo> second = round(hs);
    assertThat(second.get(0).round()).isEqualTo(1);
    assertThat(second.get(0).bootstrapStoreInfo()).isEqualTo(info); // same address and port
    // published again in round 1's prefix, for newcomers
    assertThat(second.get(1).store().getString(RendezvousStoreInfo.MASTER_ADDR_KEY))
        .isEqualTo("127.0.0.1");
    TcpStore next = client(info.masterPort());
    assertThat(next.check(List.of("stale"))).isFalse(); // no key of round 0 survives
    assertThat(next.numKeys()).isZero();
    // the old round's connection went with the old server
    assertThatThrownBy(() -> worker.getString("stale")).isInstanceOf(StoreException.class);
  }

  @Test
  void shutdownStopsTheServer() throws Exception {
    List<DynamicHandler> hs = List.of(handler(2, true, Map.of()), handler(2, true, Map.of()));
    List<RendezvousInfo> infos = round(hs);
    DynamicHandler owner = rankZero(hs, infos);
    TcpStoreServer served = owner.bootstrapServer().orElseThrow();
    DynamicHandler other = hs.get(0) == owner ? hs.get(1) : hs.get(0);
    assertThat(other.bootstrapServer()).isEmpty();
    assertThat(owner.shutdown()).isTrue();
    assertThat(served.awaitTermination(Duration.ofSeconds(10))).isTrue();
    assertThat(owner.bootstrapServer()).isEmpty();
  }

  @Test
  void closeStopsTheServer() throws Exception {
    DynamicHandler h = handler(1, true, Map.of());
    round(List.of(h));
    TcpStoreServer single = h.bootstrapServer().orElseThrow();
    h.close();
    assertThat(single.awaitTermination(Duration.ofSeconds(10))).isTrue();
  }

  @Test
  void withSharingOffRank0PublishesAFreePortAndServesNothing() throws Exception {
    List<DynamicHandler> hs = List.of(handler(2, false, Map.of()), handler(2, false, Map.of()));
    List<RendezvousInfo> infos = round(hs);
    assertThat(infos.get(0).bootstrapStoreInfo())
        .isNotNull()
        .isEqualTo(infos.get(1).bootstrapStoreInfo());
    assertThat(hs).noneMatch(DynamicHandler::useAgentStore);
    assertThat(hs).allMatch(h -> h.bootstrapServer().isEmpty());
  }

  @Test
  void the113DialectHasNoBootstrapStore() throws Exception {
    List<DynamicHandler> hs =
        List.of(
            handler(2, true, Map.of("store_protocol", "1.13")),
            handler(2, true, Map.of("store_protocol", "1.13")));
    List<RendezvousInfo> infos = round(hs);
    assertThat(infos).allMatch(i -> i.bootstrapStoreInfo() == null);
    assertThat(hs).noneMatch(DynamicHandler::useAgentStore);
    assertThat(hs).allMatch(h -> h.bootstrapServer().isEmpty());
  }
}
