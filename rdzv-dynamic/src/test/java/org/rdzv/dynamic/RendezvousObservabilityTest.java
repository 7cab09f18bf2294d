package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousTimeoutException;
import org.rdzv.api.events.ElasticEvent;
import org.rdzv.api.events.EventRecorder;
import org.rdzv.api.events.Events;
import org.rdzv.api.events.NodeState;
import org.rdzv.api.events.RdzvEvent;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.testing.Await;

/**
 * The meters and PyTorch's events of real c10d rendezvous over our store on port 0: each node
 * records into its own registry, so what one node saw is told apart from the others.
 */
class RendezvousObservabilityTest {
  TcpStoreServer server;
  final List<DynamicRendezvousHandler> handlers = new ArrayList<>();
  final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
  final String runId = "obs-" + UUID.randomUUID();
  final List<RdzvEvent> events = new CopyOnWriteArrayList<>();
  final EventRecorder recorder =
      e -> {
        if (e instanceof RdzvEvent r && r.runId().equals(runId)) {
          events.add(r);
        }
      };

  @BeforeEach
  void start() {
    server = TcpStoreServer.start("", 0);
    Events.add(recorder);
  }

  @AfterEach
  void stop() {
    Events.remove(recorder);
    handlers.forEach(DynamicRendezvousHandler::close);
    pool.shutdownNow();
    server.close();
  }

  DynamicRendezvousHandler handler(int min, int max, MeterRegistry meters, Map<String, ?> extra) {
    Map<String, Object> config =
        new HashMap<>(Map.of("is_host", "false", "last_call_timeout", "1", "join_timeout", "30"));
    config.putAll(extra);
    DynamicRendezvousHandler h =
        DynamicRendezvousHandler.create(
            new C10dRendezvousProvider(),
            new RendezvousParameters(
                "c10d", "127.0.0.1:" + server.port(), runId, min, max, null, config),
            meters);
    handlers.add(h);
    return h;
  }

  CompletableFuture<RendezvousInfo> join(DynamicRendezvousHandler h) {
    return CompletableFuture.supplyAsync(h::nextRendezvous, pool);
  }

  static double gauge(MeterRegistry r, String name) {
    return r.get(name).gauge().value();
  }

  static long joins(MeterRegistry r, String outcome) {
    Timer t = r.find(RendezvousMetrics.JOIN).tag("outcome", outcome).timer();
    return t == null ? 0 : t.count();
  }

  List<String> namesOf(DynamicRendezvousHandler h) {
    return events.stream()
        .filter(e -> e.localId() != null && e.localId() == h.node().localId())
        .map(RdzvEvent::name)
        .toList();
  }

  @Test
  void roundsJoinLatencyParticipantsAndWaitingNodesAreMeasuredPerNode() throws Exception {
    MeterRegistry ra = new SimpleMeterRegistry();
    MeterRegistry rb = new SimpleMeterRegistry();
    MeterRegistry rc = new SimpleMeterRegistry();
    DynamicRendezvousHandler a = handler(2, 3, ra, Map.of());
    DynamicRendezvousHandler b = handler(2, 3, rb, Map.of());
    CompletableFuture<RendezvousInfo> fa = join(a);
    CompletableFuture<RendezvousInfo> fb = join(b);
    fa.get(30, TimeUnit.SECONDS);
    fb.get(30, TimeUnit.SECONDS);
    for (MeterRegistry r : List.of(ra, rb)) {
      assertThat(r.get(RendezvousMetrics.ROUNDS).counter().count()).isEqualTo(1);
      assertThat(joins(r, "joined")).isEqualTo(1);
      assertThat(gauge(r, RendezvousMetrics.PARTICIPANTS)).isEqualTo(2);
      assertThat(gauge(r, RendezvousMetrics.ROUND)).isZero();
      assertThat(r.get(RendezvousMetrics.ROUNDS).counter().getId().getTag("run_id"))
          .isEqualTo(runId);
      assertThat(r.get(RendezvousMetrics.ROUNDS).counter().getId().getTag("backend"))
          .isEqualTo("c10d");
    }
    // The round is complete with 2 of at most 3: a late node waits for the next round.
    DynamicRendezvousHandler c = handler(2, 3, rc, Map.of());
    CompletableFuture<RendezvousInfo> fc = join(c);
    Await.until("a sees the waiting node", Duration.ofSeconds(30), () -> a.numNodesWaiting() == 1);
    assertThat(gauge(ra, RendezvousMetrics.WAITING)).isEqualTo(1);
    assertThat(fc).isNotDone();
    // As agents do, the participants re-join: round 1 has all three.
    fa = join(a);
    fb = join(b);
    assertThat(fc.get(30, TimeUnit.SECONDS).worldSize()).isEqualTo(3);
    fa.get(30, TimeUnit.SECONDS);
    fb.get(30, TimeUnit.SECONDS);
    assertThat(ra.get(RendezvousMetrics.ROUNDS).counter().count()).isEqualTo(2);
    assertThat(gauge(ra, RendezvousMetrics.ROUND)).isEqualTo(1);
    assertThat(gauge(ra, RendezvousMetrics.PARTICIPANTS)).isEqualTo(3);
    assertThat(gauge(ra, RendezvousMetrics.WAITING)).isZero();
    assertThat(joins(rc, "joined")).isEqualTo(1);
    assertThat(
            rc.get(RendezvousMetrics.JOIN)
                .tag("outcome", "joined")
                .timer()
                .totalTime(TimeUnit.NANOSECONDS))
        .isPositive();

    // PyTorch's events, in PyTorch's order, for the node that waited. (A node that took its turn
    // to add itself admitted the waiting one in the same write: rdzv's batching, see
    // docs/dynamic-rendezvous.md; so c never added itself.)
    List<String> cNames = namesOf(c);
    assertThat(cNames)
        .startsWith(
            "dynamic_rendezvous.py:DynamicRendezvousHandler.next_rendezvous",
            "dynamic_rendezvous.py:_DistributedRendezvousOpExecutor._add_to_wait_list",
            "dynamic_rendezvous.py:_DistributedRendezvousOpExecutor._keep_alive",
            "dynamic_rendezvous.py:_DistributedRendezvousOpExecutor.run")
        .endsWith("dynamic_rendezvous.py:DynamicRendezvousHandler.next_rendezvous");
    assertThat(namesOf(a))
        .containsSubsequence(
            "dynamic_rendezvous.py:DynamicRendezvousHandler.next_rendezvous",
            "dynamic_rendezvous.py:_DistributedRendezvousOpExecutor._add_to_participants",
            "dynamic_rendezvous.py:_DistributedRendezvousOpExecutor._keep_alive",
            "dynamic_rendezvous.py:_DistributedRendezvousOpExecutor.run",
            "dynamic_rendezvous.py:DynamicRendezvousHandler.next_rendezvous",
            "dynamic_rendezvous.py:DynamicRendezvousHandler.next_rendezvous",
            "dynamic_rendezvous.py:_DistributedRendezvousOpExecutor._remove_from_participants",
            "dynamic_rendezvous.py:DynamicRendezvousHandler.next_rendezvous");
    RdzvEvent joined =
        events.stream()
            .filter(e -> e.localId() == c.node().localId())
            .reduce((x, y) -> y)
            .orElseThrow();
    assertThat(joined.message())
        .isEqualTo(
            "The node '"
                + c.node()
                + "' has joined round 1 of the rendezvous '"
                + runId
                + "' as rank "
                + joined.rank()
                + " in a world of size 3.");
    assertThat(joined.hostname()).isEqualTo(c.node().host());
    assertThat(joined.pid()).isEqualTo(ProcessHandle.current().pid());
    assertThat(joined.nodeState()).isEqualTo(NodeState.RUNNING);
    // Somebody completed each round, and said so as PyTorch does.
    assertThat(
            events.stream()
                .filter(
                    e ->
                        e.name()
                            .equals(
                                "dynamic_rendezvous.py:_DistributedRendezvousOpExecutor"
                                    + "._mark_rendezvous_complete"))
                .map(RdzvEvent::message)
                .map(m -> m.replaceFirst("^The node '[^']*' ", "")))
        .contains(
            "marked round 0 of the rendezvous '" + runId + "' as complete. Pending sync.",
            "marked round 1 of the rendezvous '" + runId + "' as complete. Pending sync.");
  }

  @Test
  void aTimedOutJoinIsMeasuredAndRecordedAsFailedWithItsTrace() {
    MeterRegistry r = new SimpleMeterRegistry();
    DynamicRendezvousHandler alone = handler(2, 2, r, Map.of("join_timeout", "1"));
    assertThatThrownBy(alone::nextRendezvous).isInstanceOf(RendezvousTimeoutException.class);
    assertThat(joins(r, "timeout")).isEqualTo(1);
    assertThat(joins(r, "joined")).isZero();
    RdzvEvent failed = events.get(events.size() - 1);
    assertThat(failed.name())
        .isEqualTo("dynamic_rendezvous.py:DynamicRendezvousHandler.next_rendezvous");
    assertThat(failed.nodeState()).isEqualTo(NodeState.FAILED);
    assertThat(failed.message()).startsWith("RendezvousTimeoutError: The rendezvous '" + runId);
    assertThat(failed.errorTrace())
        .startsWith("org.rdzv.api.RendezvousTimeoutException: ")
        .contains("\tat org.rdzv.dynamic.");
  }

  @Test
  void heartbeatsLostParticipantsAndTheirRemovalAreCountedAndRecorded() throws Exception {
    MeterRegistry ra = new SimpleMeterRegistry();
    Map<String, String> fast = Map.of("keep_alive_interval", "1", "keep_alive_max_attempt", "2");
    DynamicRendezvousHandler a = handler(2, 2, ra, fast);
    DynamicRendezvousHandler b = handler(2, 2, new SimpleMeterRegistry(), fast);
    CompletableFuture<RendezvousInfo> fa = join(a);
    join(b).get(30, TimeUnit.SECONDS);
    fa.get(30, TimeUnit.SECONDS);
    ((DynamicHandler) a).keepAlive();
    assertThat(ra.get(RendezvousMetrics.HEARTBEATS).tag("outcome", "ok").counter().count())
        .isGreaterThanOrEqualTo(1);
    assertThat(namesOf(a)).contains("dynamic_rendezvous.py:DynamicRendezvousHandler._keep_alive");
    // b dies without leaving: its heartbeats stop, a finds it gone.
    b.close();
    Await.until(
        "a counts b as lost",
        Duration.ofSeconds(30),
        () -> {
          a.state();
          return ra.get(RendezvousMetrics.LOST).counter().count() == 1;
        });
    ((DynamicHandler) a).keepAlive(); // a write that removes b for everyone
    Await.until(
        "the removal is recorded",
        Duration.ofSeconds(30),
        () ->
            events.stream()
                .anyMatch(
                    e ->
                        e.name().equals("dynamic_rendezvous.py:_BackendRendezvousStateHolder.sync")
                            && e.message().contains("'" + b.node() + "'")
                            && e.message().endsWith("since they had no heartbeat.")));
  }

  @Test
  void theLastHandlerOfARendezvousToCloseRemovesItsMeters() throws Exception {
    MeterRegistry shared = new SimpleMeterRegistry();
    DynamicRendezvousHandler a = handler(2, 2, shared, Map.of());
    DynamicRendezvousHandler b = handler(2, 2, shared, Map.of());
    CompletableFuture<RendezvousInfo> fa = join(a);
    join(b).get(30, TimeUnit.SECONDS);
    fa.get(30, TimeUnit.SECONDS);
    assertThat(shared.get(RendezvousMetrics.ROUNDS).counter().count()).isEqualTo(2);
    a.close();
    assertThat(shared.find(RendezvousMetrics.ROUNDS).counter()).isNotNull();
    b.close();
    assertThat(shared.find(RendezvousMetrics.ROUNDS).counter()).isNull();
    assertThat(shared.getMeters()).isEmpty();
  }

  @Test
  void eventsAreNotBuiltWithoutADestination() {
    Events.remove(recorder);
    List<ElasticEvent> none = new CopyOnWriteArrayList<>();
    DynamicRendezvousHandler a = handler(1, 1, new SimpleMeterRegistry(), Map.of());
    a.nextRendezvous();
    assertThat(Events.enabled()).isFalse();
    assertThat(events).isEmpty();
    assertThat(none).isEmpty();
  }
}
