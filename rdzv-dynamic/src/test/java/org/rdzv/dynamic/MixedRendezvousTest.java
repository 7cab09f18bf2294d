package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.testing.FreePort;
import org.rdzv.testing.Peers;
import org.rdzv.testing.PythonProcess;

/** Java nodes and real PyTorch 1.13 nodes in one c10d rendezvous. */
class MixedRendezvousTest {
  static final String NODES = PythonProcess.resource(MixedRendezvousTest.class, "/py/nodes.py");
  static final Pattern RESULT =
      Pattern.compile(
          "\\{\"node\": \"(.+?)\", \"rank\": (\\d+), \"world\": (\\d+), \"round\": (\\d+)\\}");

  final List<DynamicRendezvousHandler> handlers = new ArrayList<>();
  final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
  final String runId = "mix-" + UUID.randomUUID();

  @AfterEach
  void stop() {
    handlers.forEach(DynamicRendezvousHandler::close);
    pool.shutdownNow();
  }

  DynamicRendezvousHandler java(String endpoint, int min, int max, boolean host) {
    Map<String, Object> config =
        new HashMap<>(
            Map.of(
                "is_host",
                Boolean.toString(host),
                "last_call_timeout",
                "1",
                "join_timeout",
                "60",
                "store_protocol",
                "1.13"));
    var h =
        (DynamicRendezvousHandler)
            RendezvousRegistry.handler(
                new RendezvousParameters("c10d", endpoint, runId, min, max, null, config));
    handlers.add(h);
    return h;
  }

  PythonProcess python(
      String endpoint, int nodes, int min, int max, boolean host, String... extra) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "--endpoint",
                endpoint,
                "--run-id",
                runId,
                "--nodes",
                Integer.toString(nodes),
                "--min",
                Integer.toString(min),
                "--max",
                Integer.toString(max),
                "--is-host",
                Boolean.toString(host),
                "--hold",
                "30"));
    args.addAll(List.of(extra));
    return PythonProcess.start(NODES, args);
  }

  /** node descriptor text → rank, from Python's lines and our infos. */
  static void assertRanksAreTheSortedDescriptors(Map<String, Integer> ranks, int world) {
    assertThat(ranks).hasSize(world);
    List<NodeDescriptor> nodes = new ArrayList<>();
    for (String text : ranks.keySet()) {
      int l = text.lastIndexOf('_');
      int p = text.lastIndexOf('_', l - 1);
      nodes.add(
          new NodeDescriptor(
              text.substring(0, p),
              Long.parseLong(text.substring(p + 1, l)),
              Long.parseLong(text.substring(l + 1))));
    }
    List<NodeDescriptor> natural = new ArrayList<>(nodes);
    natural.sort(NodeDescriptor.NATURAL_ORDER);
    List<NodeDescriptor> pytorch = new ArrayList<>(nodes);
    pytorch.sort(NodeDescriptor.PYTORCH_ORDER);
    List<Integer> byNatural = natural.stream().map(n -> ranks.get(n.toString())).toList();
    List<Integer> byPytorch = pytorch.stream().map(n -> ranks.get(n.toString())).toList();
    List<Integer> expected = java.util.stream.IntStream.range(0, world).boxed().toList();
    // whoever completed the round ranked them: a PyTorch node by string order, a Java node
    // naturally
    assertThat(byNatural.equals(expected) || byPytorch.equals(expected))
        .as("ranks %s follow the sorted descriptors", ranks)
        .isTrue();
  }

  Map<String, Integer> pythonRanks(PythonProcess py, int count, int world, long round) {
    Map<String, Integer> ranks = new HashMap<>();
    for (int i = 0; i < count; i++) {
      final int seen = i;
      String line =
          py.awaitLine(
              l -> l.contains("\"rank\"") && ranksCount(py) > seen, Duration.ofSeconds(60));
      assertThat(line).isNotNull();
    }
    for (String line : py.lines()) {
      assertThat(line).doesNotContain("\"error\"");
      Matcher m = RESULT.matcher(line);
      if (m.find()) {
        assertThat(Integer.parseInt(m.group(3))).as(line).isEqualTo(world);
        assertThat(Long.parseLong(m.group(4))).as(line).isEqualTo(round);
        ranks.put(m.group(1), Integer.parseInt(m.group(2)));
      }
    }
    return ranks;
  }

  static long ranksCount(PythonProcess py) {
    return py.lines().stream().filter(l -> l.contains("\"rank\"")).count();
  }

  @Test
  void pytorchHostsTheStoreAndJavaJoins() throws Exception {
    Peers.requireTorch();
    String endpoint = "127.0.0.1:" + FreePort.next();
    try (PythonProcess py = python(endpoint, 2, 3, 3, true)) {
      py.awaitLine(l -> l.contains("\"created\""), Duration.ofSeconds(60));
      DynamicRendezvousHandler j = java(endpoint, 3, 3, false);
      RendezvousInfo info =
          CompletableFuture.supplyAsync(j::nextRendezvous, pool).get(60, TimeUnit.SECONDS);
      assertThat(info.worldSize()).isEqualTo(3);
      Map<String, Integer> ranks = pythonRanks(py, 2, 3, 0);
      ranks.put(j.node().toString(), info.rank());
      assertRanksAreTheSortedDescriptors(ranks, 3);
      assertThat(j.state().dialect()).isEqualTo(StateDialect.V1_13);
      // read-only status against PyTorch's own 1.13 server
      StateSnapshot status =
          C10dRendezvous.readState(
                  new RendezvousParameters(
                      "c10d", endpoint, runId, 1, 1, null, Map.of("store_protocol", "1.13")))
              .orElseThrow();
      assertThat(status.complete()).isTrue();
      assertThat(status.participants()).hasSize(3).containsEntry(j.node(), info.rank());
    }
  }

  @Test
  void javaHostsTheStoreAndPyTorchJoins() throws Exception {
    Peers.requireTorch();
    String endpoint = "127.0.0.1:" + FreePort.next();
    DynamicRendezvousHandler host = java(endpoint, 4, 4, true);
    DynamicRendezvousHandler other = java(endpoint, 4, 4, false);
    try (PythonProcess py = python(endpoint, 2, 4, 4, false)) {
      var a = CompletableFuture.supplyAsync(host::nextRendezvous, pool);
      var b = CompletableFuture.supplyAsync(other::nextRendezvous, pool);
      RendezvousInfo ia = a.get(60, TimeUnit.SECONDS);
      RendezvousInfo ib = b.get(60, TimeUnit.SECONDS);
      assertThat(ia.worldSize()).isEqualTo(4);
      assertThat(ib.worldSize()).isEqualTo(4);
      Map<String, Integer> ranks = pythonRanks(py, 2, 4, 0);
      ranks.put(host.node().toString(), ia.rank());
      ranks.put(other.node().toString(), ib.rank());
      assertRanksAreTheSortedDescriptors(ranks, 4);
      // the round's store is shared: a Java rank's key is visible through the prefix
      ia.store().set("from-java", "1");
      assertThat(ib.store().getString("from-java")).isEqualTo("1");
    }
  }

  @Test
  void aLateJavaNodeIsSeenWaitingByPyTorch() throws Exception {
    Peers.requireTorch();
    String endpoint = "127.0.0.1:" + FreePort.next();
    try (PythonProcess py = python(endpoint, 2, 2, 3, true, "--report-waiting", "--hold", "20")) {
      py.awaitLine(l -> l.contains("\"created\""), Duration.ofSeconds(60));
      pythonRanks(py, 2, 2, 0);
      DynamicRendezvousHandler late = java(endpoint, 2, 3, false);
      var joining = CompletableFuture.supplyAsync(late::nextRendezvous, pool);
      py.awaitLine(l -> l.equals("{\"waiting\": 1}"), Duration.ofSeconds(30));
      StateSnapshot s = late.state();
      assertThat(s.waitList()).containsExactly(late.node());
      assertThat(s.complete()).isTrue();
      joining.cancel(true);
    }
  }
}
