package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousClosedException;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.testing.Await;

/** Java nodes in one c10d rendezvous over our TCP store server on port 0. */
class C10dRendezvousTest {
  TcpStoreServer server;
  final List<DynamicRendezvousHandler> handlers = new ArrayList<>();
  final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
  final String runId = "t-" + UUID.randomUUID();

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

  DynamicRendezvousHandler handler(int min, int max, Map<String, Object> extra) {
    Map<String, Object> config =
        new java.util.HashMap<>(
            Map.of("is_host", "false", "last_call_timeout", "1", "join_timeout", "30"));
    config.putAll(extra);
    RendezvousHandler h =
        RendezvousRegistry.handler(
            new RendezvousParameters(
                "c10d", "127.0.0.1:" + server.port(), runId, min, max, null, config));
    DynamicRendezvousHandler d = (DynamicRendezvousHandler) h;
    handlers.add(d);
    return d;
  }

  CompletableFuture<RendezvousInfo> join(DynamicRendezvousHandler h) {
    return CompletableFuture.supplyAsync(h::nextRendezvous, pool);
  }

  @Test
  void threeNodesAgreeOnRanksAndWorldSize() throws Exception {
    List<DynamicRendezvousHandler> hs =
        List.of(handler(3, 3, Map.of()), handler(3, 3, Map.of()), handler(3, 3, Map.of()));
    List<CompletableFuture<RendezvousInfo>> futures = hs.stream().map(this::join).toList();
    List<Integer> ranks = new ArrayList<>();
    for (var f : futures) {
      RendezvousInfo info = f.get(30, TimeUnit.SECONDS);
      assertThat(info.worldSize()).isEqualTo(3);
      assertThat(info.round()).isZero();
      ranks.add(info.rank());
    }
    assertThat(ranks).containsExactlyInAnyOrder(0, 1, 2);
    // ranks are the sorted order of the descriptors (same host and pid: by local id)
    List<DynamicRendezvousHandler> sorted = new ArrayList<>(hs);
    sorted.sort((a, b) -> NodeDescriptor.NATURAL_ORDER.compare(a.node(), b.node()));
    for (int i = 0; i < 3; i++) {
      assertThat(ranks.get(hs.indexOf(sorted.get(i)))).isEqualTo(i);
    }
    // the returned store is prefixed with the round, and shared
    RendezvousInfo first = futures.get(0).get();
    first.store().set("hello", "world");
    assertThat(futures.get(1).get().store().getString("hello")).isEqualTo("world");
    try (TcpStore raw = TcpStore.connect("127.0.0.1", server.port())) {
      assertThat(raw.check(List.of("torch.rendezvous." + runId + ".0/hello"))).isTrue();
    }
  }

  @Test
  void manyNodesJoinThroughTheTurnQueueAndBatchedAdmissions() throws Exception {
    int n = 32;
    List<DynamicRendezvousHandler> hs = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      hs.add(handler(n, n, Map.of()));
    }
    List<CompletableFuture<RendezvousInfo>> futures = hs.stream().map(this::join).toList();
    boolean[] seen = new boolean[n];
    for (var f : futures) {
      RendezvousInfo info = f.get(60, TimeUnit.SECONDS);
      assertThat(info.worldSize()).isEqualTo(n);
      assertThat(seen[info.rank()]).as("rank %d twice", info.rank()).isFalse();
      seen[info.rank()] = true;
    }
    StateSnapshot s = hs.get(0).state();
    assertThat(s.participants().keySet())
        .containsExactlyInAnyOrderElementsOf(
            hs.stream().map(DynamicRendezvousHandler::node).toList());
    assertThat(s.lastHeartbeats().keySet()).containsAll(s.participants().keySet());
  }

  @Test
  void lastCallCompletesARoundBetweenMinAndMax() throws Exception {
    var a = join(handler(2, 4, Map.of()));
    var b = join(handler(2, 4, Map.of()));
    assertThat(a.get(30, TimeUnit.SECONDS).worldSize()).isEqualTo(2);
    assertThat(b.get(30, TimeUnit.SECONDS).worldSize()).isEqualTo(2);
  }

  @Test
  void lateJoinerIsCountedAsWaitingAndTheNextRoundTakesEveryone() throws Exception {
    DynamicRendezvousHandler a = handler(1, 3, Map.of());
    DynamicRendezvousHandler b = handler(1, 3, Map.of());
    RendezvousInfo first = join(a).get(30, TimeUnit.SECONDS);
    assertThat(first.worldSize()).isEqualTo(1);
    var late = join(b);
    Await.until("the late node to wait", Duration.ofSeconds(20), () -> a.numNodesWaiting() == 1);
    // the agent's reaction: re-rendezvous; a leaves round 0, both join round 1
    RendezvousInfo again = join(a).get(30, TimeUnit.SECONDS);
    RendezvousInfo lateInfo = late.get(30, TimeUnit.SECONDS);
    assertThat(again.round()).isEqualTo(1);
    assertThat(lateInfo.round()).isEqualTo(1);
    assertThat(again.worldSize()).isEqualTo(2);
    assertThat(Set.of(again.rank(), lateInfo.rank())).containsExactlyInAnyOrder(0, 1);
  }

  @Test
  void aNodeThatStopsHeartbeatingIsDroppedReportedAndTheSurvivorsFormTheNextRound()
      throws Exception {
    Map<String, Object> fast = Map.of("keep_alive_interval", "1", "keep_alive_max_attempt", "4");
    DynamicRendezvousHandler a = handler(2, 3, fast);
    DynamicRendezvousHandler b = handler(2, 3, fast);
    DynamicRendezvousHandler victim = handler(2, 3, fast);
    List<Set<NodeDescriptor>> reported = new CopyOnWriteArrayList<>();
    a.addListener((round, lost) -> reported.add(lost));
    var fa = join(a);
    var fb = join(b);
    var fv = join(victim);
    assertThat(fa.get(30, TimeUnit.SECONDS).worldSize()).isEqualTo(3);
    fb.get(30, TimeUnit.SECONDS);
    fv.get(30, TimeUnit.SECONDS);
    victim.close(); // killed: no more heartbeats, no goodbye
    Await.until(
        "the victim to be reported lost", Duration.ofSeconds(20), () -> !reported.isEmpty());
    assertThat(reported.get(0)).containsExactly(victim.node());
    assertThat(a.lostParticipants()).containsExactly(victim.node());
    // PyTorch's behaviour: the round stays complete and nobody waits
    assertThat(a.numNodesWaiting()).isZero();
    var na = join(a);
    var nb = join(b);
    RendezvousInfo ia = na.get(30, TimeUnit.SECONDS);
    RendezvousInfo ib = nb.get(30, TimeUnit.SECONDS);
    assertThat(ia.worldSize()).isEqualTo(2);
    assertThat(ib.worldSize()).isEqualTo(2);
    assertThat(ia.round()).isEqualTo(1);
    assertThat(Set.of(ia.rank(), ib.rank())).containsExactlyInAnyOrder(0, 1);
  }

  @Test
  void aNodeKilledWhileTheRoundFormsIsDroppedAndTheOthersCompleteWithoutIt() throws Exception {
    Map<String, Object> conf =
        Map.of("keep_alive_interval", "1", "keep_alive_max_attempt", "3", "last_call_timeout", "6");
    DynamicRendezvousHandler victim = handler(2, 4, conf);
    DynamicRendezvousHandler a = handler(2, 4, conf);
    // The victim joins first and is killed while waiting for the round to complete: its join
    // thread dies, it never heartbeats again, and it never removes itself.
    Thread victimThread =
        Thread.ofVirtual()
            .start(
                () -> {
                  try {
                    victim.nextRendezvous();
                  } catch (RuntimeException expected) {
                    // interrupted
                  }
                });
    Await.until(
        "the victim to be a participant",
        Duration.ofSeconds(20),
        () -> a.state().participants().containsKey(victim.node()));
    victimThread.interrupt();
    victimThread.join(Duration.ofSeconds(20));
    DynamicRendezvousHandler b = handler(2, 4, conf);
    var fa = join(a);
    var fb = join(b);
    RendezvousInfo ia = fa.get(60, TimeUnit.SECONDS);
    RendezvousInfo ib = fb.get(60, TimeUnit.SECONDS);
    assertThat(ia.worldSize()).isEqualTo(2);
    assertThat(ib.worldSize()).isEqualTo(2);
    assertThat(Set.of(ia.rank(), ib.rank())).containsExactlyInAnyOrder(0, 1);
    assertThat(a.state().participants()).doesNotContainKey(victim.node());
  }

  @Test
  void leaveRemovesTheNodeAtOnceWithoutClosing() throws Exception {
    DynamicRendezvousHandler a = handler(1, 2, Map.of());
    DynamicRendezvousHandler b = handler(1, 2, Map.of());
    var fa = join(a);
    var fb = join(b);
    fa.get(30, TimeUnit.SECONDS);
    fb.get(30, TimeUnit.SECONDS);
    b.leave();
    StateSnapshot s = a.state();
    assertThat(s.closed()).isFalse();
    Await.until(
        "b gone", Duration.ofSeconds(5), () -> !a.state().participants().containsKey(b.node()));
    assertThat(a.isClosed()).isFalse();
  }

  @Test
  void shutdownClosesTheRendezvousForEveryone() throws Exception {
    DynamicRendezvousHandler a = handler(1, 1, Map.of());
    join(a).get(30, TimeUnit.SECONDS);
    assertThat(a.shutdown()).isTrue();
    DynamicRendezvousHandler b = handler(1, 1, Map.of());
    assertThat(b.isClosed()).isTrue();
    assertThatThrownBy(b::nextRendezvous).isInstanceOf(RendezvousClosedException.class);
  }

  @Test
  void statusReadsWithoutWriting() throws Exception {
    try (TcpStore raw = TcpStore.connect("127.0.0.1", server.port())) {
      assertThat(C10dRendezvous.readState(raw, runId)).isEmpty();
      assertThat(raw.check(List.of(C10dRendezvous.stateKey(runId)))).isFalse();
      join(handler(1, 1, Map.of())).get(30, TimeUnit.SECONDS);
      StateSnapshot s = C10dRendezvous.readState(raw, runId).orElseThrow();
      assertThat(s.complete()).isTrue();
      assertThat(s.participants()).hasSize(1);
    }
  }

  @Test
  void aCorruptStateIsAStateError() {
    try (TcpStore raw = TcpStore.connect("127.0.0.1", server.port())) {
      raw.set(C10dRendezvous.stateKey(runId), "bm90IGEgcGlja2xl"); // base64("not a pickle")
      DynamicRendezvousHandler h = handler(1, 1, Map.of());
      assertThatThrownBy(h::nextRendezvous)
          .isInstanceOf(org.rdzv.api.RendezvousStateException.class);
      raw.set(C10dRendezvous.stateKey(runId), "!!!");
      assertThatThrownBy(h::numNodesWaiting)
          .isInstanceOf(org.rdzv.api.RendezvousStateException.class)
          .hasMessage("The state object is corrupt. See inner exception for details.");
    }
  }

  @Test
  void hostingFallsBackToClientWhenThePortIsTakenButOnlyIfInferred() {
    // is_host explicitly true on a busy port: a connection error, as PyTorch
    assertThatThrownBy(() -> handler(1, 1, Map.of("is_host", "true")))
        .isInstanceOf(RendezvousConnectionException.class);
    // inferred (127.0.0.1 is this machine): falls back to joining the existing server
    Map<String, Object> config = Map.of("last_call_timeout", "1");
    DynamicRendezvousHandler h =
        (DynamicRendezvousHandler)
            RendezvousRegistry.handler(
                new RendezvousParameters(
                    "c10d", "127.0.0.1:" + server.port(), runId, 1, 1, null, config));
    handlers.add(h);
    assertThat(h.nextRendezvous().worldSize()).isEqualTo(1);
  }

  @Test
  void configErrorsUsePyTorchsMessages() {
    assertThatThrownBy(() -> handler(1, 1, Map.of("read_timeout", "0")))
        .hasMessage("The read timeout must be a positive integer.");
    assertThatThrownBy(() -> handler(1, 1, Map.of("store_type", "redis")))
        .hasMessage("Invalid store type given. Currently only supports file and tcp.");
    assertThatThrownBy(() -> handler(1, 1, Map.of("join_timeout", "0")))
        .hasMessage("The join timeout (0:00:00) must be positive.");
    assertThatThrownBy(
            () ->
                RendezvousRegistry.handler(
                    new RendezvousParameters(
                        "c10d",
                        "127.0.0.1:" + server.port(),
                        "",
                        1,
                        1,
                        null,
                        Map.of("is_host", "false"))))
        .hasMessage("The run id must be a non-empty string.");
  }

  @Test
  void fileStoreBackedRendezvous(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir)
      throws Exception {
    String path = dir.resolve("store").toString();
    Map<String, Object> config = Map.of("store_type", "file", "last_call_timeout", "1");
    DynamicRendezvousHandler a =
        (DynamicRendezvousHandler)
            RendezvousRegistry.handler(
                new RendezvousParameters("c10d", path, runId, 2, 2, null, config));
    DynamicRendezvousHandler b =
        (DynamicRendezvousHandler)
            RendezvousRegistry.handler(
                new RendezvousParameters("c10d", path, runId, 2, 2, null, config));
    handlers.add(a);
    handlers.add(b);
    var fa = join(a);
    var fb = join(b);
    assertThat(fa.get(30, TimeUnit.SECONDS).worldSize()).isEqualTo(2);
    assertThat(fb.get(30, TimeUnit.SECONDS).worldSize()).isEqualTo(2);
  }
}
