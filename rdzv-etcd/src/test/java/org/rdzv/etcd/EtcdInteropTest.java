package org.rdzv.etcd;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.testing.Await;
import org.rdzv.testing.EtcdProcess;
import org.rdzv.testing.Peers;
import org.rdzv.testing.PythonProcess;

/**
 * Java and PyTorch 1.13 nodes in one rendezvous on a real etcd, for {@code etcd} and {@code
 * etcd-v2}: everyone agrees on the world, the ranks are 0..n-1, and greetings written into the
 * returned store by either language are read by both.
 */
class EtcdInteropTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static EtcdProcess etcd;

  @BeforeAll
  static void startEtcd() {
    Peers.requireEtcdServer();
    Peers.requireTorch();
    Peers.requirePythonEtcd();
    etcd = EtcdProcess.start();
  }

  @AfterAll
  static void stopEtcd() {
    if (etcd != null) {
      etcd.close();
    }
  }

  @Test
  void legacyEtcdJavaAndPythonNodesShareOneRendezvous() throws Exception {
    mixed("etcd", "legacy-mix", Map.of("timeout", "60", "last_call_timeout", "1"));
  }

  @Test
  void etcdV2JavaAndPythonNodesShareOneRendezvous() throws Exception {
    mixed(
        "etcd-v2",
        "v2-mix",
        Map.of("join_timeout", "60", "last_call_timeout", "1", "store_protocol", "1.13"));
  }

  @Test
  void legacyEtcdLatePyTorchNodeIsCountedByJavaAndStoppedWhenJavaCloses() throws Exception {
    RendezvousParameters params =
        new RendezvousParameters(
            "etcd",
            etcd.endpoint(),
            "legacy-late",
            2,
            2,
            Map.of("timeout", "60", "last_call_timeout", "1"));
    try (JavaNodes java = JavaNodes.start(params, 2, false)) {
      java.await(Duration.ofSeconds(60));
      RendezvousHandler first = java.handlers.get(0);
      try (PythonProcess python =
          PythonProcess.start(
              PythonProcess.resource(EtcdInteropTest.class, "/py/etcd_nodes.py"),
              List.of(
                  "--backend",
                  "etcd",
                  "--endpoint",
                  etcd.endpoint(),
                  "--run-id",
                  "legacy-late",
                  "--nodes",
                  "1",
                  "--min",
                  "2",
                  "--max",
                  "2",
                  "--timeout",
                  "60"))) {
        Await.until(
            "the PyTorch node counted as waiting",
            Duration.ofSeconds(60),
            () -> first.numNodesWaiting() == 1);
        assertThat(first.shutdown()).isTrue();
        String line = python.awaitLine(l -> l.contains("\"error\""), Duration.ofSeconds(60));
        assertThat(JSON.readTree(line).get("error").asText()).isEqualTo("RendezvousClosedError");
      }
      java.handlers.forEach(RendezvousHandler::shutdown);
    }
  }

  static List<JsonNode> jsonLines(PythonProcess python) throws Exception {
    List<JsonNode> lines = new ArrayList<>();
    for (String line : python.lines()) {
      if (line.startsWith("{")) {
        lines.add(JSON.readTree(line));
      }
    }
    return lines;
  }

  /** Two Python nodes and two Java nodes, min = max = 4. */
  private static void mixed(String backend, String runId, Map<String, String> javaConfig)
      throws Exception {
    try (PythonProcess python =
            PythonProcess.start(
                PythonProcess.resource(EtcdInteropTest.class, "/py/etcd_nodes.py"),
                List.of(
                    "--backend",
                    backend,
                    "--endpoint",
                    etcd.endpoint(),
                    "--run-id",
                    runId,
                    "--nodes",
                    "2",
                    "--min",
                    "4",
                    "--max",
                    "4",
                    "--timeout",
                    "60",
                    "--last-call-timeout",
                    "1",
                    "--exchange"));
        JavaNodes java =
            JavaNodes.start(
                JavaNodes.params(backend, etcd.endpoint(), runId, 4, 4, javaConfig), 2, true)) {
      List<JavaNodes.Outcome> javaOutcomes = java.await(Duration.ofSeconds(90));
      python.awaitLine(l -> l.contains("\"done\""), Duration.ofSeconds(90));
      Set<Integer> ranks = new HashSet<>();
      Set<Long> rounds = new HashSet<>();
      for (JavaNodes.Outcome outcome : javaOutcomes) {
        assertThat(outcome.info().worldSize()).isEqualTo(4);
        ranks.add(outcome.info().rank());
        rounds.add(outcome.info().round());
        assertThat(outcome.greetings()).containsExactly("hello0", "hello1", "hello2", "hello3");
      }
      int pythonJoins = 0;
      int pythonExchanges = 0;
      for (JsonNode line : jsonLines(python)) {
        assertThat(line.has("error")).as(python.output()).isFalse();
        if (line.has("world")) {
          pythonJoins++;
          assertThat(line.get("world").asInt()).isEqualTo(4);
          ranks.add(line.get("rank").asInt());
        }
        if (line.has("got")) {
          pythonExchanges++;
          assertThat(line.get("got").toString())
              .isEqualTo("[\"hello0\",\"hello1\",\"hello2\",\"hello3\"]");
        }
      }
      assertThat(pythonJoins).as(python.output()).isEqualTo(2);
      assertThat(pythonExchanges).as(python.output()).isEqualTo(2);
      assertThat(ranks).containsExactlyInAnyOrder(0, 1, 2, 3);
      assertThat(rounds).hasSize(1);
      assertThat(python.awaitExit(Duration.ofSeconds(30))).isZero();
    }
  }
}
