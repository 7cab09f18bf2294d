package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousGracefulExitException;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.api.RendezvousTimeoutException;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.testing.Await;

/** A node beyond max_nodes: 1.13 times out, 2.x parks in the redundancy list. Real store. */
class OverProvisioningTest {
  TcpStoreServer server;
  final List<DynamicRendezvousHandler> handlers = new ArrayList<>();
  final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
  final String runId = "over-" + UUID.randomUUID();

  @BeforeEach
  void start() {
    server = TcpStoreServer.start("", 0);
  }

  @AfterEach
  void stop() {
    handlers.forEach(DynamicRendezvousHandler::close);
    pool.shutdownNow();
    server.close();
  }

  DynamicRendezvousHandler handler(String dialect, String joinTimeout) {
    Map<String, Object> config =
        new HashMap<>(
            Map.of(
                "is_host",
                "false",
                "last_call_timeout",
                "1",
                "join_timeout",
                joinTimeout,
                "state_dialect",
                dialect));
    var h =
        (DynamicRendezvousHandler)
            RendezvousRegistry.handler(
                new RendezvousParameters(
                    "c10d", "127.0.0.1:" + server.port(), runId, 2, 2, null, config));
    handlers.add(h);
    return h;
  }

  @Test
  void in113AThirdNodeTimesOut() throws Exception {
    var a = handler("1.13", "30");
    var b = handler("1.13", "30");
    var fa = CompletableFuture.supplyAsync(a::nextRendezvous, pool);
    var fb = CompletableFuture.supplyAsync(b::nextRendezvous, pool);
    fa.get(30, TimeUnit.SECONDS);
    fb.get(30, TimeUnit.SECONDS);
    var c = handler("1.13", "2");
    assertThatThrownBy(c::nextRendezvous).isInstanceOf(RendezvousTimeoutException.class);
    assertThat(a.state().redundancyList()).isEmpty();
    assertThat(a.state().dialect()).isEqualTo(StateDialect.V1_13);
  }

  @Test
  void in2xAThirdNodeParksAndTakesAFreedSeat() throws Exception {
    var a = handler("2.6+", "30");
    var b = handler("2.6+", "30");
    var fa = CompletableFuture.supplyAsync(a::nextRendezvous, pool);
    var fb = CompletableFuture.supplyAsync(b::nextRendezvous, pool);
    fa.get(30, TimeUnit.SECONDS);
    fb.get(30, TimeUnit.SECONDS);
    var c = handler("2.6+", "2"); // parked nodes ignore the join timeout
    var fc = CompletableFuture.supplyAsync(c::nextRendezvous, pool);
    Await.until(
        "c parked", Duration.ofSeconds(20), () -> a.state().redundancyList().contains(c.node()));
    assertThat(a.numNodesWaiting()).isZero(); // the redundancy list is not counted
    assertThat(a.state().dialect()).isEqualTo(StateDialect.V2_6);
    b.leave();
    a.leave(); // the round empties, the next one opens; c takes a seat and waits for a partner
    var again = CompletableFuture.supplyAsync(a::nextRendezvous, pool);
    RendezvousInfo ic = fc.get(30, TimeUnit.SECONDS);
    RendezvousInfo ia = again.get(30, TimeUnit.SECONDS);
    assertThat(ic.worldSize()).isEqualTo(2);
    assertThat(ia.round()).isEqualTo(ic.round()).isGreaterThan(0);
    // 2.x: rank 0 publishes the bootstrap store address in the round's prefix
    assertThat(ic.bootstrapStoreInfo()).isNotNull().isEqualTo(ia.bootstrapStoreInfo());
  }

  @Test
  void in2xAParkedNodeExitsGracefullyWhenTheRendezvousCloses() throws Exception {
    var a = handler("2.0-2.5", "30");
    var b = handler("2.0-2.5", "30");
    var fa = CompletableFuture.supplyAsync(a::nextRendezvous, pool);
    var fb = CompletableFuture.supplyAsync(b::nextRendezvous, pool);
    fa.get(30, TimeUnit.SECONDS);
    fb.get(30, TimeUnit.SECONDS);
    var c = handler("2.0-2.5", "30");
    var fc = CompletableFuture.supplyAsync(c::nextRendezvous, pool);
    Await.until(
        "c parked", Duration.ofSeconds(20), () -> a.state().redundancyList().contains(c.node()));
    assertThat(a.shutdown()).isTrue();
    assertThatThrownBy(() -> fc.get(30, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class)
        .cause()
        .isInstanceOf(RendezvousGracefulExitException.class);
  }
}
