package org.rdzv.etcd;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreOptions;
import org.rdzv.testing.Await;
import org.rdzv.testing.EtcdProcess;
import org.rdzv.testing.Peers;
import org.rdzv.testing.PythonProcess;
import org.rdzv.testing.Torch;

/**
 * Java and PyTorch (1.13 and 2.6) nodes in one rendezvous on a real etcd, for {@code etcd} and
 * {@code etcd-v2}, either side joining first: everyone agrees on the world, the ranks are 0..n-1,
 * greetings written into the returned store by either language are read by both, and a 2.6 node
 * finds the bootstrap store address a Java rank 0 publishes.
 */
class EtcdInteropTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String NODES =
      PythonProcess.resource(EtcdInteropTest.class, "/py/etcd_nodes.py");
  private static EtcdProcess etcd;
  @TempDir Path dir;

  @BeforeAll
  static void startEtcd() {
    Peers.requireEtcdServer();
    Peers.requirePythonEtcd();
    etcd = EtcdProcess.start();
  }

  @AfterAll
  static void stopEtcd() {
    if (etcd != null) {
      etcd.close();
    }
  }

  enum First {
    JAVA,
    PYTORCH
  }

  static Stream<Arguments> torchesAndFirsts() {
    List<Arguments> all = new ArrayList<>();
    for (Torch torch : Torch.values()) {
      for (First first : First.values()) {
        all.add(Arguments.of(torch, first));
      }
    }
    return all.stream();
  }

  @ParameterizedTest(name = "{0}, {1} joins first")
  @MethodSource("torchesAndFirsts")
  void legacyEtcdJavaAndPythonNodesShareOneRendezvous(Torch torch, First first) throws Exception {
    mixed(torch, first, "etcd", Map.of("timeout", "60", "last_call_timeout", "1"));
  }

  @ParameterizedTest(name = "{0}, {1} joins first")
  @MethodSource("torchesAndFirsts")
  void etcdV2JavaAndPythonNodesShareOneRendezvous(Torch torch, First first) throws Exception {
    Map<String, String> config =
        new HashMap<>(Map.of("join_timeout", "60", "last_call_timeout", "1"));
    if (!torch.is2x()) {
      config.put("store_protocol", "1.13"); // Java nodes may create the state: 1.13's dialect
    }
    mixed(torch, first, "etcd-v2", config);
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void legacyEtcdLatePyTorchNodeIsCountedByJavaAndStoppedWhenJavaCloses(Torch torch)
      throws Exception {
    torch.require();
    String runId = "legacy-late-" + UUID.randomUUID();
    RendezvousParameters params =
        new RendezvousParameters(
            "etcd",
            etcd.endpoint(),
            runId,
            2,
            2,
            Map.of("timeout", "60", "last_call_timeout", "1"));
    try (JavaNodes java = JavaNodes.start(params, 2, false)) {
      java.await(Duration.ofSeconds(60));
      RendezvousHandler first = java.handlers.get(0);
      try (PythonProcess python =
          PythonProcess.start(
              torch,
              NODES,
              List.of(
                  "--backend",
                  "etcd",
                  "--endpoint",
                  etcd.endpoint(),
                  "--run-id",
                  runId,
                  "--nodes",
                  "1",
                  "--min",
                  "2",
                  "--max",
                  "2",
                  "--timeout",
                  "60"),
              Map.of())) {
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

  /** How many nodes the rendezvous state of {@code params} holds (0 without one). */
  static int joined(RendezvousParameters params) {
    if (params.backend().equals("etcd")) {
      var text = EtcdRendezvous.legacyState(params);
      try {
        return text.isEmpty() ? 0 : JSON.readTree(text.get()).path("participants").size();
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
    return EtcdRendezvous.readState(params).map(s -> s.participants().size()).orElse(0);
  }

  /** Two Python nodes and two Java nodes, min = max = 4. */
  private void mixed(Torch torch, First first, String backend, Map<String, String> javaConfig)
      throws Exception {
    torch.require();
    String runId = backend + "-mix-" + UUID.randomUUID();
    RendezvousParameters params =
        JavaNodes.params(backend, etcd.endpoint(), runId, 4, 4, javaConfig);
    Path go = dir.resolve("go");
    List<String> args =
        new ArrayList<>(
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
                "--exchange",
                "--hold",
                "10"));
    if (first == First.JAVA) {
      args.addAll(List.of("--start-after", go.toString()));
    }
    try (PythonProcess python = PythonProcess.start(torch, NODES, args, Map.of())) {
      python.awaitLine(l -> l.contains("\"ready\""), Duration.ofSeconds(60));
      if (first == First.PYTORCH) {
        Await.until(
            "the PyTorch nodes joined first", Duration.ofSeconds(60), () -> joined(params) == 2);
      }
      try (JavaNodes java = JavaNodes.start(params, 2, true)) {
        if (first == First.JAVA) {
          Await.until(
              "the Java nodes joined first", Duration.ofSeconds(60), () -> joined(params) == 2);
          Files.createFile(go);
        }
        List<JavaNodes.Outcome> javaOutcomes = java.await(Duration.ofSeconds(90));
        python.awaitLine(l -> l.contains("\"done\""), Duration.ofSeconds(90));
        Set<Integer> ranks = new HashSet<>();
        Set<Long> rounds = new HashSet<>();
        RendezvousStoreInfo javaRank0 = null;
        for (JavaNodes.Outcome outcome : javaOutcomes) {
          assertThat(outcome.info().worldSize()).isEqualTo(4);
          ranks.add(outcome.info().rank());
          rounds.add(outcome.info().round());
          assertThat(outcome.greetings()).containsExactly("hello0", "hello1", "hello2", "hello3");
          if (outcome.info().rank() == 0) {
            // the legacy handler cannot tell 1.13 peers from 2.x ones and always publishes; the
            // dynamic one does under 2.x dialects
            javaRank0 = outcome.info().bootstrapStoreInfo();
            assertThat(javaRank0 != null).isEqualTo(torch.is2x() || backend.equals("etcd"));
          }
        }
        int pythonJoins = 0;
        int pythonExchanges = 0;
        Set<String> masters = new HashSet<>();
        for (JsonNode line : jsonLines(python)) {
          assertThat(line.has("error")).as(python.output()).isFalse();
          if (line.has("world")) {
            pythonJoins++;
            assertThat(line.get("world").asInt()).isEqualTo(4);
            ranks.add(line.get("rank").asInt());
            assertThat(line.has("master")).as(line.toString()).isEqualTo(torch.is2x());
            if (line.has("master")) {
              masters.add(line.get("master").asText());
            }
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
        if (backend.equals("etcd") && first == First.JAVA) {
          // legacy ranks are the join order: Java is rank 0, and 2.6 nodes no longer fail with
          // "LookupError: Key MASTER_ADDR not found in EtcdStore"
          assertThat(javaRank0).isNotNull();
        }
        if (torch.is2x()) {
          // every 2.6 node read one bootstrap address (a Java rank 0's, where Java is rank 0)
          assertThat(masters).hasSize(1);
          if (javaRank0 != null) {
            assertThat(masters)
                .containsExactly(javaRank0.masterAddr() + ":" + javaRank0.masterPort());
          }
          if (backend.equals("etcd-v2")) {
            // the dynamic handler shares the store: whoever is rank 0 serves it there
            String[] hostPort = masters.iterator().next().split(":");
            try (TcpStore client =
                TcpStore.connect(
                    TcpStoreOptions.builder(hostPort[0], Integer.parseInt(hostPort[1]))
                        .timeout(Duration.ofSeconds(10))
                        .build())) {
              client.set("reached", "yes");
              assertThat(client.getString("reached")).isEqualTo("yes");
            }
          }
        }
        assertThat(python.awaitExit(Duration.ofSeconds(30))).isZero();
      }
    }
  }
}
