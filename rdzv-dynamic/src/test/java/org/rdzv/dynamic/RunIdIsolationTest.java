package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.store.TcpStoreServer;

/**
 * Two run ids on one real TCP store never disturb each other, whatever their shapes: for each
 * adversarial pair, run {@code a} (two nodes) and run {@code b} (three nodes) form their rounds on
 * one server, {@code a} first, {@code b} first, and both at once, and each gets its own world size
 * and every rank once.
 */
class RunIdIsolationTest {
  TcpStoreServer server;
  final List<DynamicRendezvousHandler> handlers = new ArrayList<>();
  final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();

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

  enum Order {
    A_FIRST,
    B_FIRST,
    TOGETHER
  }

  /** Pairs where one run id's PyTorch key or rdzv key derivation could meet the other's. */
  static List<String[]> pairs() {
    return List.of(
        new String[] {"job", "job.epoch"},
        new String[] {"job", "job.turns"},
        new String[] {"job", "job.signalling"},
        new String[] {"y", "y.epoch"},
        new String[] {"job", "job.passed"},
        new String[] {"job", "job.changed"},
        new String[] {"job", "job.queue"},
        new String[] {"job.epoch", "job.epoch.epoch"},
        new String[] {"a", "a.0"},
        new String[] {"a", "a/b"},
        new String[] {"a/b", "a/b/c"},
        new String[] {"1", "1.1"},
        new String[] {"0", "00"},
        new String[] {" ", "\t"},
        new String[] {"null", "None"},
        new String[] {"é", "e\u0301"},
        new String[] {"日本", "日本.epoch"},
        new String[] {"~", "~fg"},
        new String[] {"rdzv", "rdzv/v1/job"},
        new String[] {"😀", "😀/epoch"});
  }

  static List<Object[]> cases() {
    List<Object[]> out = new ArrayList<>();
    List<String[]> pairs = pairs();
    for (int i = 0; i < pairs.size(); i++) {
      for (Order order : Order.values()) {
        // Both dialects: 2.x also writes MASTER_ADDR/MASTER_PORT into each round's store.
        String dialect = (i + order.ordinal()) % 2 == 0 ? "1.13" : "2.6+";
        out.add(new Object[] {pairs.get(i)[0], pairs.get(i)[1], order, dialect});
      }
    }
    return out;
  }

  DynamicRendezvousHandler handler(String runId, int n, String dialect) {
    Map<String, Object> config = new HashMap<>();
    config.put("is_host", "false");
    config.put("join_timeout", "60");
    config.put("state_dialect", dialect);
    DynamicRendezvousHandler h =
        (DynamicRendezvousHandler)
            RendezvousRegistry.handler(
                new RendezvousParameters(
                    "c10d", "127.0.0.1:" + server.port(), runId, n, n, null, config));
    handlers.add(h);
    return h;
  }

  record Run(String runId, List<DynamicRendezvousHandler> nodes) {}

  Run create(String runId, int n, String dialect) {
    return new Run(runId, IntStream.range(0, n).mapToObj(i -> handler(runId, n, dialect)).toList());
  }

  List<CompletableFuture<RendezvousInfo>> join(Run run) {
    return run.nodes().stream()
        .map(h -> CompletableFuture.supplyAsync(h::nextRendezvous, pool))
        .toList();
  }

  static void assertFormed(Run run, List<CompletableFuture<RendezvousInfo>> joins)
      throws Exception {
    int n = run.nodes().size();
    List<Integer> ranks = new ArrayList<>();
    for (var f : joins) {
      RendezvousInfo info = f.get(60, TimeUnit.SECONDS);
      assertThat(info.worldSize()).as("world size in run '%s'", run.runId()).isEqualTo(n);
      assertThat(info.round()).as("round of run '%s'", run.runId()).isZero();
      ranks.add(info.rank());
    }
    assertThat(ranks)
        .as("ranks in run '%s'", run.runId())
        .containsExactlyInAnyOrderElementsOf(IntStream.range(0, n).boxed().toList());
    assertState(run);
  }

  static void assertState(Run run) {
    StateSnapshot state = run.nodes().get(0).state();
    assertThat(state.complete()).isTrue();
    assertThat(state.participants().keySet())
        .as("participants of run '%s'", run.runId())
        .containsExactlyInAnyOrderElementsOf(
            run.nodes().stream().map(DynamicRendezvousHandler::node).toList());
  }

  @ParameterizedTest(name = "[{index}] ''{0}'' and ''{1}'', {2}, dialect {3}")
  @MethodSource("cases")
  void bothRunsFormTheirOwnRounds(String a, String b, Order order, String dialect)
      throws Exception {
    assertThat(RendezvousKeys.pytorchCollision(a)).isEmpty();
    assertThat(RendezvousKeys.pytorchCollision(b)).isEmpty();
    switch (order) {
      case A_FIRST, B_FIRST -> {
        String first = order == Order.A_FIRST ? a : b;
        String second = order == Order.A_FIRST ? b : a;
        Run one = create(first, first.equals(a) ? 2 : 3, dialect);
        assertFormed(one, join(one));
        Run two = create(second, second.equals(a) ? 2 : 3, dialect);
        assertFormed(two, join(two));
        // The first run, still heartbeating, is untouched by the second.
        assertState(one);
        assertThat(one.nodes().get(0).numNodesWaiting()).isZero();
      }
      case TOGETHER -> {
        Run one = create(a, 2, dialect);
        Run two = create(b, 3, dialect);
        var joinsOne = join(one);
        var joinsTwo = join(two);
        assertFormed(one, joinsOne);
        assertFormed(two, joinsTwo);
      }
    }
  }
}
