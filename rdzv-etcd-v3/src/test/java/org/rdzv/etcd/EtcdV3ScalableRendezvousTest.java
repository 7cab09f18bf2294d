package org.rdzv.etcd;

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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.testing.EtcdProcess;
import org.rdzv.testing.Peers;

/**
 * The scalable protocol's rules over a real etcd 3.4, through handlers of the registry as separate
 * nodes would create them: a thousand nodes in one round, a killed node reported within the
 * keep-alive bound, a late node and the next round, and both ways of meeting PyTorch's protocol on
 * one run id.
 */
class EtcdV3ScalableRendezvousTest {
  private static EtcdProcess etcd;

  private final String runId = "scalable-" + UUID.randomUUID();
  private final List<RendezvousHandler> handlers = new ArrayList<>();
  private final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();

  @BeforeAll
  static void startEtcd() {
    Peers.requireEtcdServer();
    etcd = EtcdProcess.start();
  }

  @AfterAll
  static void stopEtcd() {
    if (etcd != null) {
      etcd.close();
    }
  }

  @AfterEach
  void tearDown() {
    pool.shutdownNow();
    handlers.forEach(RendezvousHandler::close);
  }

  private RendezvousHandler handler(int min, int max, Map<String, Object> extra) {
    Map<String, Object> conf = new HashMap<>(Map.of("rendezvous_protocol", "scalable"));
    conf.putAll(extra);
    return handlerWith(min, max, conf);
  }

  private RendezvousHandler handlerWith(int min, int max, Map<String, Object> conf) {
    RendezvousHandler h =
        RendezvousRegistry.handler(
            new RendezvousParameters("etcd-v3", etcd.endpoint(), runId, min, max, null, conf));
    handlers.add(h);
    return h;
  }

  private List<RendezvousInfo> joinAll(List<RendezvousHandler> hs) throws Exception {
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
    List<RendezvousInfo> infos = joinAll(hs);
    Set<Integer> ranks = new HashSet<>();
    for (RendezvousInfo info : infos) {
      assertThat(info.worldSize()).isEqualTo(1000);
      assertThat(info.round()).isZero();
      ranks.add(info.rank());
    }
    assertThat(ranks).hasSize(1000).contains(0, 999);
    assertThat(infos.stream().map(RendezvousInfo::bootstrapStoreInfo).distinct()).hasSize(1);
    assertThat(hs.get(0).backend()).isEqualTo("etcd-v3");
  }

  @Test
  void protocolScalableAlsoChoosesItOnEtcdV3() throws Exception {
    List<RendezvousHandler> hs =
        List.of(
            handlerWith(2, 2, Map.of("protocol", "scalable")),
            handlerWith(2, 2, Map.of("protocol", "scalable")));
    assertThat(joinAll(hs)).extracting(RendezvousInfo::rank).containsExactlyInAnyOrder(0, 1);
    // A node of PyTorch's protocol on that run id sees it was taken by the scalable one.
    RendezvousHandler compatible = handlerWith(1, 2, Map.of("join_timeout", "60"));
    assertThatThrownBy(compatible::nextRendezvous)
        .isInstanceOf(RendezvousStateException.class)
        .hasMessageContaining("protocol=scalable");
  }

  @Test
  void aNodeKilledAfterCompletionIsReportedWithinTheKeepAliveBound() throws Exception {
    Map<String, Object> fast = Map.of("keep_alive_interval", "1", "keep_alive_max_attempt", "2");
    List<RendezvousHandler> hs =
        List.of(handler(3, 3, fast), handler(3, 3, fast), handler(3, 3, fast));
    joinAll(hs);
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
    assertThat(both.await(15, TimeUnit.SECONDS)).isTrue();
    // bound = 1 s x 2, noticed at the neighbour's next heartbeat, reported at the other's.
    assertThat(Duration.ofNanos(System.nanoTime() - killed))
        .isLessThanOrEqualTo(Duration.ofSeconds(2 + 2 * 1 + 1));
    assertThat(heard.values()).allSatisfy(lost -> assertThat(lost).containsExactly(victim));
  }

  @Test
  void aLateNodeMakesAgentsComeBackAndTheNextRoundTakesEveryone() throws Exception {
    Map<String, Object> conf = Map.of("last_call_timeout", "1");
    List<RendezvousHandler> first = List.of(handler(2, 3, conf), handler(2, 3, conf));
    assertThat(joinAll(first)).allSatisfy(i -> assertThat(i.worldSize()).isEqualTo(2));
    RendezvousHandler late = handler(2, 3, conf);
    Future<RendezvousInfo> lateJoin = pool.submit(late::nextRendezvous);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (first.get(0).numNodesWaiting() == 0) {
      assertThat(System.nanoTime()).as("the late node shows as waiting").isLessThan(deadline);
      assertThat(lateJoin.isDone()).isFalse();
      Thread.onSpinWait();
    }
    List<RendezvousInfo> again = joinAll(first);
    RendezvousInfo lateInfo = lateJoin.get(30, TimeUnit.SECONDS);
    assertThat(again)
        .allSatisfy(
            i -> {
              assertThat(i.round()).isEqualTo(1);
              assertThat(i.worldSize()).isEqualTo(3);
            });
    assertThat(lateInfo.round()).isEqualTo(1);
    assertThat(Set.of(lateInfo.rank(), again.get(0).rank(), again.get(1).rank()))
        .containsExactlyInAnyOrder(0, 1, 2);
  }

  @Test
  void aScalableNodeMeetingAPyTorchProtocolRunIdFailsAtOnceWithTheReason() throws Exception {
    RendezvousHandler compatible = handlerWith(1, 1, Map.of());
    compatible.nextRendezvous();
    RendezvousHandler scalable = handler(1, 1, Map.of("join_timeout", "60"));
    long start = System.nanoTime();
    assertThatThrownBy(scalable::nextRendezvous)
        .isInstanceOf(RendezvousStateException.class)
        .hasMessageContaining("used by nodes of protocol=pytorch");
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(10));
  }
}
