package org.rdzv.etcd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousClosedException;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.testing.Await;
import org.rdzv.testing.EtcdProcess;
import org.rdzv.testing.Peers;

/** The legacy {@code etcd} handler's keys, TTLs and JSON states, on a real etcd. */
class LegacyEtcdRendezvousTest {
  private static EtcdProcess etcd;
  private static EtcdV2Client raw;

  @BeforeAll
  static void startEtcd() {
    Peers.requireEtcdServer();
    etcd = EtcdProcess.start();
    raw = EtcdV2Client.create(EtcdConnection.of(etcd.endpoint()));
  }

  @AfterAll
  static void stopEtcd() {
    if (etcd != null) {
      etcd.close();
    }
  }

  @Test
  void statesAreWrittenAsPythonsJsonDumpsWritesThem() {
    ObjectNode state = PythonJson.object();
    state.put("status", "final");
    state.put("version", "1");
    state.putArray("participants").add(0).add(1);
    state.putArray("keep_alives").add("/p/run_r/rdzv/v_1/rank_0");
    state.put("num_workers_waiting", 0);
    assertThat(PythonJson.dumps(state))
        .isEqualTo(
            "{\"status\": \"final\", \"version\": \"1\", \"participants\": [0, 1], "
                + "\"keep_alives\": [\"/p/run_r/rdzv/v_1/rank_0\"], \"num_workers_waiting\": 0}");
    ObjectNode odd = PythonJson.object();
    odd.put("k", "\u00e9\n\"\u007f\\");
    // json.dumps({"k": "\u00e9\n\"\x7f\\"}) in CPython:
    assertThat(PythonJson.dumps(odd)).isEqualTo("{\"k\": \"\\u00e9\\n\\\"\\u007f\\\\\"}");
    assertThat(PythonJson.dumps(PythonJson.parseObject("{\"a\":[1,true,null,\"x\"]}")))
        .isEqualTo("{\"a\": [1, true, null, \"x\"]}");
  }

  @Test
  void keysAndTtlsFollowPyTorchsLayout() throws Exception {
    RendezvousParameters params =
        new RendezvousParameters(
            "etcd",
            etcd.endpoint(),
            "layout",
            2,
            2,
            Map.of("timeout", "30", "last_call_timeout", "1"));
    try (JavaNodes nodes = JavaNodes.start(params, 2, true)) {
      List<JavaNodes.Outcome> outcomes = nodes.await(Duration.ofSeconds(60));
      assertThat(outcomes).extracting(o -> o.info().round()).containsOnly(1L);
      String run = "/torchelastic/p2p/run_layout";
      EtcdV2Client.Node dir = raw.get(run, false).node();
      assertThat(dir.dir()).isTrue();
      assertThat(dir.ttl()).isBetween(7100L, 7200L);
      assertThat(raw.get(run + "/rdzv/version_counter", false).node().value()).isEqualTo("1");
      EtcdV2Client.Node active = raw.get(run + "/rdzv/active_version", false).node();
      assertThat(active.ttl()).as("a final state has no TTL").isZero();
      assertThat(active.value())
          .isEqualTo(
              "{\"status\": \"final\", \"version\": \"1\", \"participants\": [0, 1], \"keep_alives\": [\""
                  + run
                  + "/rdzv/v_1/rank_"
                  + firstConfirmed(active.value())
                  + "\", \""
                  + run
                  + "/rdzv/v_1/rank_"
                  + (1 - firstConfirmed(active.value()))
                  + "\"], \"num_workers_waiting\": 0}");
      for (int rank = 0; rank < 2; rank++) {
        EtcdV2Client.Node keepAlive = raw.get(run + "/rdzv/v_1/rank_" + rank, false).node();
        assertThat(keepAlive.ttl()).isBetween(1L, 10L);
        assertThat(keepAlive.value()).isEmpty();
      }
      // The store: kv/<base64 key> = base64 value (from_0 = hello0).
      assertThat(raw.get(run + "/rdzv/v_1/kv/ZnJvbV8w", false).node().value())
          .isEqualTo("aGVsbG8w");
      nodes.handlers.forEach(RendezvousHandler::shutdown);
    }
  }

  private static int firstConfirmed(String state) {
    return state.contains("keep_alives\": [\"/torchelastic/p2p/run_layout/rdzv/v_1/rank_0") ? 0 : 1;
  }

  @Test
  void aLateNodeIsCountedAsWaitingAndClosingTheRunEndsItsWait() throws Exception {
    RendezvousParameters params =
        new RendezvousParameters(
            "etcd",
            etcd.endpoint(),
            "late",
            2,
            2,
            Map.of("timeout", "60", "last_call_timeout", "1"));
    try (JavaNodes nodes = JavaNodes.start(params, 2, false)) {
      nodes.await(Duration.ofSeconds(60));
      RendezvousHandler first = nodes.handlers.get(0);
      assertThat(first.numNodesWaiting()).isZero();
      RendezvousHandler late = RendezvousRegistry.handler(params);
      CompletableFuture<RendezvousInfo> lateJoin =
          CompletableFuture.supplyAsync(late::nextRendezvous);
      Await.until(
          "the late node counted as waiting",
          Duration.ofSeconds(30),
          () -> first.numNodesWaiting() == 1);
      String state = EtcdRendezvous.legacyState(params).orElseThrow();
      assertThat(state).contains("\"status\": \"final\"").endsWith("\"num_workers_waiting\": 1}");
      first.setClosed();
      assertThat(first.isClosed()).isTrue();
      assertThat(EtcdRendezvous.legacyState(params).orElseThrow())
          .startsWith("{\"status\": \"closed\"");
      assertThatThrownBy(() -> lateJoin.get(30, TimeUnit.SECONDS))
          .isInstanceOf(ExecutionException.class)
          .hasCauseInstanceOf(RendezvousClosedException.class);
      late.shutdown();
      nodes.handlers.forEach(RendezvousHandler::shutdown);
    }
  }

  @Test
  void aRoundWithFewerThanMaxNodesClosesAfterTheLastCall() throws Exception {
    RendezvousParameters params =
        new RendezvousParameters(
            "etcd",
            etcd.endpoint(),
            "lastcall",
            2,
            4,
            Map.of("timeout", "60", "last_call_timeout", "1"));
    try (JavaNodes nodes = JavaNodes.start(params, 2, false)) {
      long start = System.nanoTime();
      List<JavaNodes.Outcome> outcomes = nodes.await(Duration.ofSeconds(60));
      assertThat(outcomes).extracting(o -> o.info().worldSize()).containsOnly(2);
      assertThat(outcomes).extracting(o -> o.info().rank()).containsExactlyInAnyOrder(0, 1);
      // The owner of the last call (rank min-1) waited last_call_timeout before freezing.
      assertThat(System.nanoTime() - start)
          .isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(900));
      nodes.handlers.forEach(RendezvousHandler::shutdown);
    }
  }
}
