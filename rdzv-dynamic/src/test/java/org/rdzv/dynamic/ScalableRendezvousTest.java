package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.store.TcpStoreServer;

/** The scalable protocol over real sockets: an embedded TCP store and handlers of the registry. */
class ScalableRendezvousTest {
  private final TcpStoreServer server = TcpStoreServer.start("", 0);
  private final String runId = "scalable-" + UUID.randomUUID();
  private final List<RendezvousHandler> handlers = new ArrayList<>();
  private final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();

  @AfterEach
  void tearDown() {
    pool.shutdownNow();
    handlers.forEach(RendezvousHandler::close);
    server.close();
  }

  private RendezvousHandler handler(int min, int max, Map<String, Object> extra) {
    Map<String, Object> conf = new HashMap<>(Map.of("protocol", "scalable", "is_host", "false"));
    conf.putAll(extra);
    RendezvousHandler h =
        RendezvousRegistry.handler(
            new RendezvousParameters(
                "c10d", "127.0.0.1:" + server.port(), runId, min, max, null, conf));
    handlers.add(h);
    return h;
  }

  private static List<RendezvousInfo> joinAll(ExecutorService pool, List<RendezvousHandler> hs)
      throws Exception {
    List<Future<RendezvousInfo>> fs = new ArrayList<>();
    for (RendezvousHandler h : hs) {
      fs.add(pool.submit(h::nextRendezvous));
    }
    List<RendezvousInfo> out = new ArrayList<>();
    for (Future<RendezvousInfo> f : fs) {
      out.add(f.get(60, TimeUnit.SECONDS));
    }
    return out;
  }

  @Test
  void aThousandNodesGetDistinctRanksInOneRound() throws Exception {
    List<RendezvousHandler> hs = new ArrayList<>();
    for (int i = 0; i < 1000; i++) {
      hs.add(handler(1000, 1000, Map.of()));
    }
    List<RendezvousInfo> infos = joinAll(pool, hs);
    Set<Integer> ranks = new HashSet<>();
    for (RendezvousInfo info : infos) {
      assertThat(info.worldSize()).isEqualTo(1000);
      assertThat(info.round()).isZero();
      ranks.add(info.rank());
    }
    assertThat(ranks).hasSize(1000).contains(0, 999);
    // Every rank has the same workers' address, published by rank 0.
    assertThat(infos.stream().map(RendezvousInfo::bootstrapStoreInfo).distinct()).hasSize(1);
    assertThat(hs.get(0).backend()).isEqualTo("c10d");
  }

  @Test
  void aNodeKilledAfterCompletionIsReportedWithinTheKeepAliveBound() throws Exception {
    Map<String, Object> fast = Map.of("keep_alive_interval", "1", "keep_alive_max_attempt", "2");
    List<RendezvousHandler> hs =
        List.of(handler(3, 3, fast), handler(3, 3, fast), handler(3, 3, fast));
    joinAll(pool, hs);
    Map<String, Set<String>> heard = new ConcurrentHashMap<>();
    CountDownLatch both = new CountDownLatch(2);
    for (int i = 1; i < 3; i++) {
      String me = hs.get(i).nodeName();
      hs.get(i)
          .addListener(
              (round, lost) -> {
                if (heard.putIfAbsent(me, lost) == null) {
                  both.countDown();
                }
              });
    }
    String victim = hs.get(0).nodeName();
    long killed = System.nanoTime();
    hs.get(0).close(); // its heartbeats stop; it does not leave
    // bound = 1 s x 2; a neighbour notices at its next heartbeat after the bound.
    assertThat(both.await(10, TimeUnit.SECONDS)).isTrue();
    Duration took = Duration.ofNanos(System.nanoTime() - killed);
    assertThat(took).isLessThanOrEqualTo(Duration.ofSeconds(2 + 2 * 1 + 1));
    assertThat(heard.values()).allSatisfy(lost -> assertThat(lost).containsExactly(victim));
  }

  @Test
  void aTombstoneNextInTheRingIsPassedOverNotReported() throws Exception {
    Map<String, Object> fast =
        Map.of("keep_alive_interval", "1", "keep_alive_max_attempt", "2", "last_call_timeout", "1");
    // Ticket 1 gives up before the round is sealed: a tombstone, ranked -1.
    RendezvousHandler quitter = handler(2, 3, Map.of("join_timeout", "1"));
    assertThatThrownBy(quitter::nextRendezvous)
        .isInstanceOf(org.rdzv.api.RendezvousTimeoutException.class);
    String prefix = RendezvousKeys.of(runId).ownPrefix(RendezvousKeys.Own.SCALABLE);
    String joined = prefix + ScalableHandler.key(0, "joined");
    try (org.rdzv.store.TcpStore probe =
        org.rdzv.store.TcpStore.connect(
            org.rdzv.store.TcpStoreOptions.builder("127.0.0.1", server.port()).build())) {
      List<RendezvousHandler> hs = List.of(handler(2, 3, fast), handler(2, 3, fast));
      // The victim takes ticket 2 before the survivor takes ticket 3.
      Future<RendezvousInfo> second = pool.submit(hs.get(0)::nextRendezvous);
      org.rdzv.testing.Await.until(
          "ticket 2 is taken",
          Duration.ofSeconds(10),
          () -> probe.check(List.of(joined)) && probe.add(joined, 0) == 2);
      RendezvousInfo third = hs.get(1).nextRendezvous();
      assertThat(List.of(second.get(30, TimeUnit.SECONDS), third))
          .allSatisfy(i -> assertThat(i.worldSize()).isEqualTo(2));
      // Ticket 3 watches ticket 1 first (the next in the ring): silent, but no participant.
      Map<String, Set<String>> heard = new ConcurrentHashMap<>();
      CountDownLatch one = new CountDownLatch(1);
      hs.get(1)
          .addListener(
              (round, lost) -> {
                heard.put("lost", lost);
                one.countDown();
              });
      String victim = hs.get(0).nodeName();
      hs.get(0).close(); // ticket 2 stops beating
      // Found after the tombstone's bound and then its own: 2 x (1 s x 2) plus a beat or two.
      assertThat(one.await(15, TimeUnit.SECONDS)).isTrue();
      assertThat(heard.get("lost")).containsExactly(victim);
      // One participant of two is gone, not two of two: the round goes on.
      assertThat(probe.add(prefix + ScalableHandler.key(0, "exited"), 0)).isEqualTo(1);
      assertThat(probe.add(prefix + "round", 0)).isZero();
    }
  }

  @Test
  void aLeaverIsReportedAtTheNextHeartbeatAndTheRoundStaysComplete() throws Exception {
    Map<String, Object> fast = Map.of("keep_alive_interval", "1");
    List<RendezvousHandler> hs = List.of(handler(2, 2, fast), handler(2, 2, fast));
    joinAll(pool, hs);
    CountDownLatch heard = new CountDownLatch(1);
    hs.get(1).addListener((round, lost) -> heard.countDown());
    long left = System.nanoTime();
    hs.get(0).leave();
    assertThat(heard.await(5, TimeUnit.SECONDS)).isTrue();
    assertThat(Duration.ofNanos(System.nanoTime() - left)).isLessThan(Duration.ofSeconds(3));
    assertThat(hs.get(1).isClosed()).isFalse();
  }

  @Test
  void aLateNodeMakesAgentsComeBackAndTheNextRoundTakesEveryone() throws Exception {
    Map<String, Object> conf = Map.of("last_call_timeout", "1");
    List<RendezvousHandler> first = List.of(handler(2, 3, conf), handler(2, 3, conf));
    assertThat(joinAll(pool, first)).allSatisfy(i -> assertThat(i.worldSize()).isEqualTo(2));
    RendezvousHandler late = handler(2, 3, conf);
    Future<RendezvousInfo> lateJoin = pool.submit(late::nextRendezvous);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (first.get(0).numNodesWaiting() == 0) {
      assertThat(System.nanoTime()).as("the late node shows as waiting").isLessThan(deadline);
      assertThat(lateJoin.isDone()).isFalse();
      Thread.onSpinWait();
    }
    List<RendezvousInfo> again = joinAll(pool, first);
    RendezvousInfo lateInfo = lateJoin.get(30, TimeUnit.SECONDS);
    assertThat(again)
        .allSatisfy(
            i -> {
              assertThat(i.round()).isEqualTo(1);
              assertThat(i.worldSize()).isEqualTo(3);
            });
    assertThat(lateInfo.round()).isEqualTo(1);
    Set<Integer> ranks =
        new HashSet<>(List.of(lateInfo.rank(), again.get(0).rank(), again.get(1).rank()));
    assertThat(ranks).containsExactlyInAnyOrder(0, 1, 2);
  }

  @Test
  void closingStopsEveryNode() throws Exception {
    List<RendezvousHandler> hs = List.of(handler(1, 2, Map.of("last_call_timeout", "1")));
    joinAll(pool, hs);
    RendezvousHandler other = handler(1, 2, Map.of());
    assertThat(hs.get(0).shutdown()).isTrue();
    assertThat(other.isClosed()).isTrue();
    assertThatThrownBy(other::nextRendezvous)
        .isInstanceOf(org.rdzv.api.RendezvousClosedException.class);
  }

  @Test
  void aPyTorchProtocolNodeMeetingAScalableRunIdFailsAtOnceWithTheReason() throws Exception {
    joinAll(pool, List.of(handler(1, 1, Map.of())));
    RendezvousHandler compatible =
        RendezvousRegistry.handler(
            new RendezvousParameters(
                "c10d",
                "127.0.0.1:" + server.port(),
                runId,
                1,
                1,
                null,
                Map.of("is_host", "false", "join_timeout", "60")));
    handlers.add(compatible);
    long start = System.nanoTime();
    assertThatThrownBy(compatible::nextRendezvous)
        .isInstanceOf(RendezvousStateException.class)
        .hasMessageContaining("protocol=scalable")
        .hasMessageContaining("this node uses protocol=pytorch");
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
  }

  @org.junit.jupiter.params.ParameterizedTest
  @org.junit.jupiter.params.provider.EnumSource(org.rdzv.testing.Torch.class)
  void aRealPyTorchNodeJoiningAScalableRunIdStopsAtOnce(org.rdzv.testing.Torch torch)
      throws Exception {
    torch.require();
    joinAll(pool, List.of(handler(1, 1, Map.of())));
    long start = System.nanoTime();
    try (org.rdzv.testing.PythonProcess py =
        org.rdzv.testing.PythonProcess.start(
            torch,
            MixedRendezvousTest.NODES,
            List.of(
                "--endpoint", "127.0.0.1:" + server.port(),
                "--run-id", runId,
                "--nodes", "1",
                "--min", "1",
                "--max", "2",
                "--is-host", "false",
                "--hold", "0"),
            Map.of())) {
      String line = py.awaitLine(l -> l.contains("\"error\""), Duration.ofSeconds(60));
      assertThat(line).contains("RendezvousClosedError");
    }
    // PyTorch's first join waits up to 0.3 s of skew; the interpreter's start is the rest.
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(30));
  }

  @Test
  void aScalableNodeMeetingAPyTorchProtocolRunIdFailsAtOnceWithTheReason() throws Exception {
    RendezvousHandler compatible =
        RendezvousRegistry.handler(
            new RendezvousParameters(
                "c10d",
                "127.0.0.1:" + server.port(),
                runId,
                1,
                1,
                null,
                Map.of("is_host", "false")));
    handlers.add(compatible);
    compatible.nextRendezvous();
    RendezvousHandler scalable = handler(1, 1, Map.of());
    assertThatThrownBy(scalable::nextRendezvous)
        .isInstanceOf(RendezvousStateException.class)
        .hasMessageContaining("used by nodes of protocol=pytorch");
  }

  @Test
  void statusShowsTheProtocolAndTheRound() throws Exception {
    joinAll(pool, List.of(handler(2, 2, Map.of()), handler(2, 2, Map.of())));
    var status =
        new C10dRendezvousProvider()
            .readStatus(
                new RendezvousParameters(
                    "c10d", "127.0.0.1:" + server.port(), runId, 1, 1, null, Map.of()))
            .orElseThrow();
    assertThat(status.lines(java.time.Instant.now()))
        .containsExactly(
            "run_id="
                + runId
                + " protocol=scalable round=0 complete=true closed=false joined=2 participants=2"
                + " waiting=0 redundant=0 gone=0");
    assertThat(status.toJson(java.time.Instant.now()))
        .startsWith("{\"run_id\": \"" + runId + "\", \"protocol\": \"scalable\", \"round\": 0,");
  }

  @Test
  void anUnknownProtocolIsRefusedWithTheChoices() {
    assertThatThrownBy(() -> handler(1, 1, Map.of("protocol", "fast")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("The rendezvous config protocol must be 'pytorch' or 'scalable', not 'fast'.");
  }

  @Test
  void theFileStoreHasNoScalableProtocol() {
    assertThatThrownBy(
            () ->
                RendezvousRegistry.handler(
                    new RendezvousParameters(
                        "c10d",
                        "/tmp/rdzv-scalable-" + UUID.randomUUID(),
                        runId,
                        1,
                        1,
                        null,
                        Map.of("protocol", "scalable", "store_type", "file"))))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("store_type=tcp");
  }
}
