package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
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
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.api.RendezvousTimeoutException;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreOptions;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.testing.Await;
import org.rdzv.testing.FreePort;
import org.rdzv.testing.PythonProcess;
import org.rdzv.testing.Torch;

/**
 * Java nodes and real PyTorch nodes (1.13 and 2.6) in one c10d rendezvous: either side hosting the
 * store, either side joining first, late nodes, killed nodes, and the dialect rule.
 */
class MixedRendezvousTest {
  static final String NODES = PythonProcess.resource(MixedRendezvousTest.class, "/py/nodes.py");
  static final Pattern RESULT =
      Pattern.compile(
          "\\{\"node\": \"(.+?)\", \"rank\": (\\d+), \"world\": (\\d+), \"round\": (\\d+)[,}]");

  final List<DynamicRendezvousHandler> handlers = new ArrayList<>();
  final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
  final String runId = "mix-" + UUID.randomUUID();
  @TempDir Path dir;

  @AfterEach
  void stop() {
    handlers.forEach(DynamicRendezvousHandler::close);
    pool.shutdownNow();
  }

  enum Side {
    JAVA,
    PYTORCH
  }

  static Stream<Arguments> hostsAndFirsts() {
    List<Arguments> all = new ArrayList<>();
    for (Torch torch : Torch.values()) {
      for (Side host : Side.values()) {
        for (Side first : Side.values()) {
          all.add(Arguments.of(torch, host, first));
        }
      }
    }
    return all.stream();
  }

  DynamicRendezvousHandler java(String endpoint, int min, int max, boolean host, String... conf) {
    return javaAt(null, endpoint, min, max, host, conf);
  }

  DynamicRendezvousHandler javaAt(
      String localAddr, String endpoint, int min, int max, boolean host, String... conf) {
    Map<String, Object> config =
        new HashMap<>(
            Map.of(
                "is_host", Boolean.toString(host), "last_call_timeout", "1", "join_timeout", "60"));
    for (int i = 0; i < conf.length; i += 2) {
      config.put(conf[i], conf[i + 1]);
    }
    var h =
        (DynamicRendezvousHandler)
            RendezvousRegistry.handler(
                new RendezvousParameters("c10d", endpoint, runId, min, max, localAddr, config));
    handlers.add(h);
    return h;
  }

  PythonProcess python(
      Torch torch, String endpoint, int nodes, int min, int max, boolean host, String... extra) {
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
    return PythonProcess.start(torch, NODES, args, Map.of());
  }

  /** node descriptor text → rank, from Python's lines and our infos. */
  static void assertRanksAreTheSortedDescriptors(Map<String, Integer> ranks, int world) {
    assertThat(ranks).hasSize(world);
    List<NodeDescriptor> nodes = new ArrayList<>();
    for (String text : ranks.keySet()) {
      nodes.add(NodeDescriptor.parse(text).orElseThrow());
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
    for (int i = 0; i < count; i++) {
      final int seen = i;
      String line =
          py.awaitLine(
              l -> (l.contains("\"rank\"") || l.contains("\"error\"")) && resultCount(py) > seen,
              Duration.ofSeconds(90));
      assertThat(line).isNotNull();
    }
    Map<String, Integer> ranks = new HashMap<>();
    for (String line : py.lines()) {
      assertThat(line).as(py.output()).doesNotContain("\"error\"");
      Matcher m = RESULT.matcher(line);
      if (m.find()) {
        assertThat(Integer.parseInt(m.group(3))).as(line).isEqualTo(world);
        assertThat(Long.parseLong(m.group(4))).as(line).isEqualTo(round);
        ranks.put(m.group(1), Integer.parseInt(m.group(2)));
      }
    }
    return ranks;
  }

  static long resultCount(PythonProcess py) {
    return py.lines().stream()
        .filter(l -> l.contains("\"rank\"") || l.contains("\"error\""))
        .count();
  }

  static StateDialect dialectOf(Torch torch) {
    return torch.is2x() ? StateDialect.V2_6 : StateDialect.V1_13;
  }

  /** The state as a status reader sees it (no write), empty while there is none. */
  java.util.Optional<StateSnapshot> status(String endpoint) {
    return C10dRendezvous.readState(new RendezvousParameters("c10d", endpoint, runId, 1, 1));
  }

  /**
   * Two Java and two PyTorch nodes, min = max = 4: whichever side hosts the store and whichever
   * joins first, they form one round ranked by the sorted descriptors, in the dialect of that
   * PyTorch. Only a Java host of a 1.13 job needs to be told the dialect (store_protocol=1.13);
   * everywhere else the Java nodes find it (the state first written, or PyTorch's store server).
   */
  @ParameterizedTest(name = "{0}, {1} hosts, {2} joins first")
  @MethodSource("hostsAndFirsts")
  void javaAndPyTorchNodesFormOneRound(Torch torch, Side host, Side first) throws Exception {
    torch.require();
    String endpoint = "127.0.0.1:" + FreePort.next();
    Path go = dir.resolve("go");
    String[] pin =
        host == Side.JAVA && torch == Torch.V1_13
            ? new String[] {"store_protocol", "1.13"}
            : new String[0];
    List<DynamicRendezvousHandler> ours = new ArrayList<>();
    if (host == Side.JAVA) {
      ours.add(java(endpoint, 4, 4, true, pin));
      ours.add(java(endpoint, 4, 4, false, pin));
    }
    String[] extra =
        first == Side.JAVA ? new String[] {"--start-after", go.toString()} : new String[0];
    try (PythonProcess py = python(torch, endpoint, 2, 4, 4, host == Side.PYTORCH, extra)) {
      py.awaitLine(l -> l.contains("\"created\""), Duration.ofSeconds(60));
      if (host == Side.PYTORCH) {
        ours.add(java(endpoint, 4, 4, false, pin));
        ours.add(java(endpoint, 4, 4, false, pin));
      }
      List<CompletableFuture<RendezvousInfo>> joins = new ArrayList<>();
      if (first == Side.PYTORCH) {
        Await.until(
            "the PyTorch nodes joined first",
            Duration.ofSeconds(60),
            () -> status(endpoint).map(s -> s.participants().size() == 2).orElse(false));
      }
      for (DynamicRendezvousHandler h : ours) {
        joins.add(CompletableFuture.supplyAsync(h::nextRendezvous, pool));
      }
      if (first == Side.JAVA) {
        Await.until(
            "the Java nodes joined first",
            Duration.ofSeconds(60),
            () -> status(endpoint).map(s -> s.participants().size() == 2).orElse(false));
        assertThat(status(endpoint).orElseThrow().participants())
            .containsOnlyKeys(ours.get(0).node(), ours.get(1).node());
        Files.createFile(go);
      }
      Map<String, Integer> ranks = pythonRanks(py, 2, 4, 0);
      List<RendezvousInfo> infos = new ArrayList<>();
      for (int i = 0; i < 2; i++) {
        RendezvousInfo info = joins.get(i).get(90, TimeUnit.SECONDS);
        assertThat(info.worldSize()).isEqualTo(4);
        ranks.put(ours.get(i).node().toString(), info.rank());
        infos.add(info);
      }
      assertRanksAreTheSortedDescriptors(ranks, 4);
      assertThat(ours.get(0).state().dialect()).isEqualTo(dialectOf(torch));
      // the round's store is shared: a Java rank's key is visible through the prefix
      infos.get(0).store().set("from-java", "1");
      assertThat(infos.get(1).store().getString("from-java")).isEqualTo("1");
      // read-only status, against whichever server hosts
      StateSnapshot s = status(endpoint).orElseThrow();
      assertThat(s.complete()).isTrue();
      assertThat(s.participants())
          .hasSize(4)
          .containsEntry(ours.get(0).node(), infos.get(0).rank());
    }
  }

  static final Pattern CHECKED =
      Pattern.compile(
          "\\{\"node\": \"(.+?)\", \"rank\": (\\d+), \"world\": 4, \"round\": (\\d+),"
              + " \"master\": \"(.+?)\", \"master_ok\": (true|false)(, \"stale\": (true|false))?\\}");

  /**
   * PyTorch 2.6 nodes and Java nodes read the bootstrap store address that rank 0 publishes, and
   * reach a store there, in two rounds in a row, whether rank 0 is a Java node (its host sorts
   * first) or a PyTorch one. A Java rank 0 serves each round from an empty server on the same port;
   * 2.6's own keeps the previous round's keys (PyTorch issue #135712).
   */
  @ParameterizedTest(name = "rank 0 is a {0} node")
  @EnumSource(Side.class)
  void theBootstrapStoreOfEitherRank0IsServedEveryRound(Side rank0) throws Exception {
    Torch.V2_6.require();
    String endpoint = "127.0.0.1:" + FreePort.next();
    // "127.0.0.1" sorts before PyTorch's getfqdn(), "zz-..." after it
    String addr = rank0 == Side.JAVA ? "127.0.0.1" : "zz-java.invalid";
    List<DynamicRendezvousHandler> ours =
        List.of(javaAt(addr, endpoint, 4, 4, true), javaAt(addr, endpoint, 4, 4, false));
    try (PythonProcess py =
        python(
            Torch.V2_6,
            endpoint,
            2,
            4,
            4,
            false,
            "--check-master",
            "--rounds",
            "2",
            "--between-rounds",
            dir.resolve("next").toString())) {
      RendezvousStoreInfo first = null;
      for (int round = 0; round < 2; round++) {
        List<CompletableFuture<RendezvousInfo>> joins = new ArrayList<>();
        for (DynamicRendezvousHandler h : ours) {
          joins.add(CompletableFuture.supplyAsync(h::nextRendezvous, pool));
        }
        List<RendezvousInfo> infos = new ArrayList<>();
        for (var f : joins) {
          infos.add(f.get(90, TimeUnit.SECONDS));
        }
        String key = "rank0-round-" + round;
        for (RendezvousInfo info : infos) {
          assertThat(info.round()).isEqualTo(round);
          RendezvousStoreInfo b = info.bootstrapStoreInfo();
          assertThat(b).isNotNull();
          if (first == null) {
            first = b;
          }
          assertThat(b).isEqualTo(first); // one address for the handler's life, as 2.6 keeps it
          try (TcpStore client =
              TcpStore.connect(
                  TcpStoreOptions.builder(b.masterAddr(), b.masterPort())
                      .timeout(Duration.ofSeconds(30))
                      .build())) {
            if (info.rank() == 0) {
              client.set(key, "yes");
            }
            assertThat(client.getString(key)).isEqualTo("yes");
          }
        }
        assertThat(infos.stream().anyMatch(i -> i.rank() == 0)).isEqualTo(rank0 == Side.JAVA);
        // every PyTorch node of this round reached the store and read rank 0's key
        final int r = round;
        py.awaitLine(
            l -> countMatching(py, r) == 2 || l.contains("\"error\""), Duration.ofSeconds(90));
        assertThat(countMatching(py, r)).as(py.output()).isEqualTo(2);
        Files.createFile(dir.resolve("next." + (round + 1))); // everyone is done with this round
      }
      for (String line : py.lines()) {
        Matcher m = CHECKED.matcher(line);
        if (m.find()) {
          assertThat(m.group(4)).isEqualTo(first.masterAddr() + ":" + first.masterPort());
          assertThat(m.group(5)).as(line).isEqualTo("true");
          if (m.group(7) != null) {
            // round 1: the key of round 0 is gone from our fresh server, kept by 2.6's
            assertThat(m.group(7)).as(line).isEqualTo(rank0 == Side.JAVA ? "false" : "true");
          }
        }
      }
    }
  }

  static long countMatching(PythonProcess py, int round) {
    return py.lines().stream()
        .map(CHECKED::matcher)
        .filter(m -> m.find() && Integer.parseInt(m.group(3)) == round)
        .count();
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void aLateJavaNodeIsSeenWaitingByPyTorch(Torch torch) throws Exception {
    torch.require();
    String endpoint = "127.0.0.1:" + FreePort.next();
    try (PythonProcess py =
        python(torch, endpoint, 2, 2, 3, true, "--report-waiting", "--hold", "40")) {
      py.awaitLine(l -> l.contains("\"created\""), Duration.ofSeconds(60));
      pythonRanks(py, 2, 2, 0);
      DynamicRendezvousHandler late = java(endpoint, 2, 3, false);
      var joining = CompletableFuture.supplyAsync(late::nextRendezvous, pool);
      py.awaitLine(l -> l.equals("{\"waiting\": 1}"), Duration.ofSeconds(30));
      StateSnapshot s = late.state();
      assertThat(s.waitList()).containsExactly(late.node());
      assertThat(s.complete()).isTrue();
      assertThat(s.dialect()).isEqualTo(dialectOf(torch));
      joining.cancel(true);
    }
  }

  /**
   * A Java node and a PyTorch process that stop heartbeating (closed without leaving; killed) are
   * dropped by the survivors of both sides after the 15 s expiry.
   */
  @ParameterizedTest
  @EnumSource(Torch.class)
  void killedNodesAreDroppedByBothSides(Torch torch) throws Exception {
    torch.require();
    String endpoint = "127.0.0.1:" + FreePort.next();
    DynamicRendezvousHandler watcher = java(endpoint, 4, 4, true, pinFor(torch));
    DynamicRendezvousHandler victim = java(endpoint, 4, 4, false, pinFor(torch));
    try (PythonProcess survivor =
            python(torch, endpoint, 1, 4, 4, false, "--report-participants", "--hold", "120");
        PythonProcess killed = python(torch, endpoint, 1, 4, 4, false, "--hold", "120")) {
      var a = CompletableFuture.supplyAsync(watcher::nextRendezvous, pool);
      var b = CompletableFuture.supplyAsync(victim::nextRendezvous, pool);
      a.get(90, TimeUnit.SECONDS);
      b.get(90, TimeUnit.SECONDS);
      String killedNode = ranksOf(killed).keySet().iterator().next();
      survivor.awaitLine("{\"participants\": 4}"::equals, Duration.ofSeconds(30));

      killed.process().destroyForcibly();
      victim.close(); // stops heartbeating without leaving, as a killed JVM would

      Await.until(
          "the Java node notices the killed PyTorch node and the closed Java node",
          Duration.ofSeconds(60),
          () -> {
            watcher.state(); // a sync: the check for expired heartbeats
            return watcher
                .lostParticipants()
                .containsAll(
                    List.of(NodeDescriptor.parse(killedNode).orElseThrow(), victim.node()));
          });
      survivor.awaitLine("{\"participants\": 2}"::equals, Duration.ofSeconds(60));
      assertThat(watcher.state().participants())
          .containsOnlyKeys(
              watcher.node(),
              NodeDescriptor.parse(ranksOf(survivor).keySet().iterator().next()).orElseThrow());
    }
  }

  /**
   * A PyTorch node that joins a state of the other dialect fails with the AttributeError the docs
   * show, writes nothing, and the Java node's join timeout says what to set.
   */
  @ParameterizedTest
  @EnumSource(Torch.class)
  void aPyTorchNodeOfTheOtherDialectFailsAsDocumented(Torch torch) throws Exception {
    torch.require();
    String endpoint = "127.0.0.1:" + FreePort.next();
    // the dialect that this PyTorch cannot read: the default for 1.13, 1.13 for 2.6
    String[] other = torch.is2x() ? new String[] {"store_protocol", "1.13"} : new String[0];
    DynamicRendezvousHandler j = java(endpoint, 2, 2, true, append(other, "join_timeout", "15"));
    var joining = CompletableFuture.supplyAsync(j::nextRendezvous, pool);
    Await.until(
        "the Java node created the state",
        Duration.ofSeconds(30),
        () -> status(endpoint).map(s -> s.participants().size() == 1).orElse(false));
    try (PythonProcess py = python(torch, endpoint, 1, 2, 2, false)) {
      String line = py.awaitLine(l -> l.contains("\"error\""), Duration.ofSeconds(60));
      assertThat(line)
          .contains("\"error\": \"AttributeError\"")
          .contains(
              torch.is2x()
                  ? "'_NodeDesc' object has no attribute 'addr'"
                  : "'_NodeDesc' object has no attribute 'fqdn'");
      assertThat(status(endpoint).orElseThrow().participants()).containsOnlyKeys(j.node());
    }
    assertThatThrownBy(() -> joining.get(60, TimeUnit.SECONDS))
        .isInstanceOf(ExecutionException.class)
        .cause()
        .isInstanceOf(RendezvousTimeoutException.class)
        .hasMessageContaining("1 of at least 2 nodes joined")
        .hasMessageContaining(
            torch.is2x()
                ? "if PyTorch 2.x nodes are among the missing, they cannot read a state in the 1.13"
                    + " dialect"
                : "if PyTorch 1.13 nodes are among the missing, they cannot read a state in the"
                    + " 2.6+ dialect (for 1.13 nodes"
                    + " set store_protocol=1.13 on every rdzv node)");
  }

  /**
   * A Java node pinned to the other dialect refuses the state PyTorch nodes created, at its first
   * read, with a one-line error naming both dialects, instead of waiting out its join timeout.
   */
  @ParameterizedTest
  @EnumSource(Torch.class)
  void aPinnedJavaNodeRefusesAPyTorchStateOfTheOtherDialectAtOnce(Torch torch) throws Exception {
    torch.require();
    try (TcpStoreServer server = TcpStoreServer.start("", 0)) {
      String endpoint = "127.0.0.1:" + server.port();
      try (PythonProcess py = python(torch, endpoint, 1, 2, 2, false)) {
        Await.until(
            "the PyTorch node created the state",
            Duration.ofSeconds(60),
            () -> status(endpoint).map(st -> st.participants().size() == 1).orElse(false));
        String[] pin =
            torch.is2x()
                ? new String[] {"store_protocol", "1.13"}
                : new String[] {"state_dialect", "2.6+"};
        DynamicRendezvousHandler j = java(endpoint, 2, 2, false, pin);
        var joining = CompletableFuture.supplyAsync(j::nextRendezvous, pool);
        assertThatThrownBy(() -> joining.get(30, TimeUnit.SECONDS)) // join_timeout is 60 s
            .isInstanceOf(ExecutionException.class)
            .cause()
            .isInstanceOf(RendezvousStateException.class)
            .hasMessage(
                "The rendezvous '"
                    + runId
                    + "' holds a state in the "
                    + dialectOf(torch).describe()
                    + " dialect, but this node is configured for the "
                    + (torch.is2x() ? StateDialect.V1_13 : StateDialect.V2_6).describe()
                    + " dialect ("
                    + pin[0]
                    + "="
                    + pin[1]
                    + "); the nodes of one rendezvous must share a dialect: set state_dialect="
                    + dialectOf(torch).label()
                    + " to join it, or use another run id.");
        assertThat(status(endpoint).orElseThrow().participants()).hasSize(1); // nothing written
      }
    }
  }

  /**
   * A Java node forced to the other TCPStore protocol than PyTorch's store host speaks fails with a
   * message naming the protocol, before its read timeout.
   */
  @ParameterizedTest
  @EnumSource(Torch.class)
  void aJavaNodeForcedToTheOtherStoreProtocolFailsSayingSo(Torch torch) throws Exception {
    torch.require();
    String endpoint = "127.0.0.1:" + FreePort.next();
    Path never = dir.resolve("never");
    try (PythonProcess py =
        python(torch, endpoint, 1, 2, 2, true, "--start-after", never.toString())) {
      py.awaitLine(l -> l.contains("\"created\""), Duration.ofSeconds(60));
      String protocol = torch.is2x() ? "1.13" : "2";
      long start = System.nanoTime();
      assertThatThrownBy(
              () -> java(endpoint, 2, 2, false, "store_protocol", protocol, "read_timeout", "30"))
          .isInstanceOf(RendezvousConnectionException.class)
          .hasMessage(
              "The connection to the C10d store has failed. See inner exception for details.")
          .cause()
          .hasMessageContaining(
              torch.is2x()
                  ? "the server closed the connection at the first 1.13 request, as a PyTorch 2.x"
                      + " server does (it expects the 2.x handshake): set store_protocol=2, or auto"
                  : "does not speak PyTorch 2.x's TCPStore protocol (store_protocol=2): it closed"
                      + " the connection at the 2.x handshake, as a PyTorch 1.13 server does; set"
                      + " store_protocol=1.13, or auto");
      assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(30));
    }
  }

  static String[] pinFor(Torch torch) {
    return torch.is2x() ? new String[0] : new String[] {"store_protocol", "1.13"};
  }

  static String[] append(String[] a, String... b) {
    return Stream.concat(Stream.of(a), Stream.of(b)).toArray(String[]::new);
  }

  Map<String, Integer> ranksOf(PythonProcess py) {
    py.awaitLine(l -> RESULT.matcher(l).find() || l.contains("\"error\""), Duration.ofSeconds(90));
    Map<String, Integer> ranks = new HashMap<>();
    for (String line : py.lines()) {
      assertThat(line).as(py.output()).doesNotContain("\"error\"");
      Matcher m = RESULT.matcher(line);
      if (m.find()) {
        ranks.put(m.group(1), Integer.parseInt(m.group(2)));
      }
    }
    return ranks;
  }
}
