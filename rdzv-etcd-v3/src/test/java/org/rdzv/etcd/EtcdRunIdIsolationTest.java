package org.rdzv.etcd;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.dynamic.DynamicRendezvousHandler;
import org.rdzv.testing.EtcdProcess;
import org.rdzv.testing.Peers;

/**
 * Two run ids on one real etcd never disturb each other: for adversarial pairs, run {@code a} (two
 * nodes) and run {@code b} (three nodes) form their rounds, one after the other in both orders and
 * at once, on etcd-v2 and etcd-v3. Run ids with {@code /} are left out on etcd-v2, where PyTorch's
 * own state keys are paths that such run ids nest (see {@code EtcdV2Backend.pathProblem}).
 */
class EtcdRunIdIsolationTest {
  private static EtcdProcess etcd;
  private static final AtomicInteger CASES = new AtomicInteger();
  private final List<DynamicRendezvousHandler> handlers = new ArrayList<>();
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
  void closeHandlers() {
    handlers.forEach(DynamicRendezvousHandler::close);
    pool.shutdownNow();
  }

  static List<Object[]> cases() {
    List<String[]> pairs =
        List.of(
            new String[] {"job", "job.epoch"},
            new String[] {"job", "job/signal"},
            new String[] {"a", "a/b"},
            new String[] {"a", "a/turn_queue"},
            new String[] {"1", "1.1"},
            new String[] {" ", "\t"},
            new String[] {"é", "e\u0301"},
            new String[] {"~", "~fg"});
    List<Object[]> out = new ArrayList<>();
    for (String backend : List.of("etcd-v2", "etcd-v3")) {
      for (String[] pair : pairs) {
        if (backend.equals("etcd-v2") && (pair[0] + pair[1]).contains("/")) {
          continue;
        }
        for (String order : List.of("a-first", "b-first", "together")) {
          out.add(new Object[] {backend, pair[0], pair[1], order});
        }
      }
    }
    return out;
  }

  private List<DynamicRendezvousHandler> create(String backend, String runId, int n) {
    List<DynamicRendezvousHandler> run = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      DynamicRendezvousHandler h =
          (DynamicRendezvousHandler)
              RendezvousRegistry.handler(
                  new RendezvousParameters(
                      backend, etcd.endpoint(), runId, n, n, null, Map.of("join_timeout", "60")));
      handlers.add(h);
      run.add(h);
    }
    return run;
  }

  private List<CompletableFuture<RendezvousInfo>> join(List<DynamicRendezvousHandler> run) {
    return run.stream().map(h -> CompletableFuture.supplyAsync(h::nextRendezvous, pool)).toList();
  }

  private static void assertFormed(
      String runId,
      List<DynamicRendezvousHandler> run,
      List<CompletableFuture<RendezvousInfo>> joins)
      throws Exception {
    List<Integer> ranks = new ArrayList<>();
    for (var f : joins) {
      RendezvousInfo info = f.get(60, TimeUnit.SECONDS);
      assertThat(info.worldSize()).as("world size of '%s'", runId).isEqualTo(run.size());
      ranks.add(info.rank());
    }
    assertThat(ranks)
        .containsExactlyInAnyOrderElementsOf(IntStream.range(0, run.size()).boxed().toList());
    assertThat(run.get(0).state().participants().keySet())
        .containsExactlyInAnyOrderElementsOf(
            run.stream().map(DynamicRendezvousHandler::node).toList());
  }

  @ParameterizedTest(name = "[{index}] {0}: ''{1}'' and ''{2}'', {3}")
  @MethodSource("cases")
  void bothRunsFormTheirOwnRounds(String backend, String a, String b, String order)
      throws Exception {
    // A tag per case keeps earlier cases' states apart and the pair's shapes (suffixes) intact.
    String tag = "iso" + CASES.incrementAndGet() + "-";
    String idA = tag + a;
    String idB = tag + b;
    if (order.equals("together")) {
      var runA = create(backend, idA, 2);
      var runB = create(backend, idB, 3);
      var joinsA = join(runA);
      var joinsB = join(runB);
      assertFormed(idA, runA, joinsA);
      assertFormed(idB, runB, joinsB);
      return;
    }
    String first = order.equals("a-first") ? idA : idB;
    String second = order.equals("a-first") ? idB : idA;
    var one = create(backend, first, first.equals(idA) ? 2 : 3);
    assertFormed(first, one, join(one));
    var two = create(backend, second, second.equals(idA) ? 2 : 3);
    assertFormed(second, two, join(two));
    assertThat(one.get(0).state().participants()).hasSize(one.size());
  }
}
