package org.rdzv.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.rdzv.launcher.MixedJob.Side;
import org.rdzv.testing.Await;
import org.rdzv.testing.Torch;

/**
 * Our agent and a real torchrun agent (1.13 and 2.6) in one job of two nodes with two gloo workers
 * each, on c10d and static, whichever side starts first (and so hosts the store and is agent 0):
 * the job runs, a worker failure on either side restarts both, and a killed agent on either side
 * leaves the other to finish.
 */
@Timeout(300)
class TorchrunInteropTest {
  private static final Duration JOB = Duration.ofSeconds(200);

  @TempDir Path dir;

  static Stream<Arguments> torchAndFirst() {
    return Stream.of(Torch.values())
        .flatMap(t -> Stream.of(Arguments.of(t, Side.RDZV), Arguments.of(t, Side.TORCHRUN)));
  }

  @ParameterizedTest(name = "{0}, {1} first")
  @MethodSource("torchAndFirst")
  void aJavaAgentAndATorchrunAgentRunOneGlooJob(Torch torch, Side first) throws Exception {
    try (MixedJob job = new MixedJob(torch, "c10d", first)) {
      job.start(GlooWorkersTest.EXAMPLES.resolve("allreduce.py").toString(), 0, "2", Map.of());
      job.awaitSuccess(JOB);
      MixedJob.Round rdzv = job.rdzvRounds().get(0);
      // PyTorch 1.13's rule when a torchrun agent takes part: worker rank 0 hosts the store. 2.x
      // workers use the store agent 0 shares (TORCHELASTIC_USE_AGENT_STORE=True).
      assertThat(rdzv.useAgentStore()).isEqualTo(torch.is2x());
      assertThat(rdzv.worldSize()).isEqualTo(4);
      assertThat(rdzv.groupRank()).isEqualTo(first == Side.RDZV ? 0 : 1);
      assertAllReduced(job, rdzv.groupRank());
    }
  }

  @ParameterizedTest(name = "{0}, {1} first")
  @MethodSource("torchAndFirst")
  void onTheStaticBackendEitherSideHostsTheStore(Torch torch, Side first) throws Exception {
    try (MixedJob job = new MixedJob(torch, "static", first)) {
      job.start(GlooWorkersTest.EXAMPLES.resolve("allreduce.py").toString(), 0, "2", Map.of());
      job.awaitSuccess(JOB);
      MixedJob.Round rdzv = job.rdzvRounds().get(0);
      assertThat(rdzv.useAgentStore()).isTrue(); // static: the endpoint's store, in 1.13 and 2.x
      assertAllReduced(job, first == Side.RDZV ? 0 : 1);
    }
  }

  private static void assertAllReduced(MixedJob job, int ourNode) {
    int base = ourNode * 2;
    int other = 2 - base;
    assertThat(job.rdzv.output())
        .as(job.output())
        .contains(
            "[rank"
                + base
                + "]:rank "
                + base
                + "/4 (local 0, node "
                + ourNode
                + "): all_reduce sum = 10");
    assertThat(job.torchrun.output())
        .as(job.output())
        .contains(
            "rank " + other + "/4 (local 0, node " + (1 - ourNode) + "): all_reduce sum = 10");
  }

  /** Global rank 1 (on agent 0, the side that started first) fails once: both agents restart. */
  @ParameterizedTest(name = "{0}, {1} first")
  @MethodSource("torchAndFirst")
  void aFailureOnEitherSideRestartsBothAgentsIntoANewRound(Torch torch, Side first)
      throws Exception {
    assertRestartAfterFailure(torch, "c10d", first);
  }

  /**
   * 1.13 only: PyTorch 2.6's own static restart fails (two torchrun 2.6 agents: "Gloo
   * connectFullMesh failed"). 2.x workers use the endpoint's store without a per-attempt prefix, so
   * the restarted group reads its predecessors' keys (PyTorch #135712), and the static backend has
   * no point at which an agent could clear them (docs/launcher.md).
   */
  @ParameterizedTest(name = "{0} first")
  @EnumSource(Side.class)
  void onTheStaticBackendAFailureOnEitherSideRestartsBoth(Side first) throws Exception {
    assertRestartAfterFailure(Torch.V1_13, "static", first);
  }

  /**
   * PyTorch 2.6 as agent 0 serves its workers one store for every round, whose stale keys make a
   * restarted gloo group fail (PyTorch #135712; two torchrun 2.6 agents fail the same way). 2.6's
   * own remedy is TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1, which rdzv's agents follow too. An rdzv
   * agent 0 serves a fresh store every round and needs nothing.
   */
  private static Map<String, String> pytorchRestartEnv(Torch torch, Side first) {
    return torch.is2x() && first == Side.TORCHRUN
        ? Map.of("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
        : Map.of();
  }

  private static void assertRestartAfterFailure(Torch torch, String backend, Side first) {
    try (MixedJob job = new MixedJob(torch, backend, first)) {
      job.start(
          GlooWorkersTest.script("flaky.py").toString(), 1, "2", pytorchRestartEnv(torch, first));
      job.awaitSuccess(JOB);
      assertThat(job.rdzvRounds()).as(job.output()).hasSize(2);
      String all = job.rdzv.output() + "\n" + job.torchrun.output();
      for (int rank = 0; rank < 4; rank++) {
        assertThat(all).as(job.output()).containsPattern("rank " + rank + " restart 1 sum 10");
      }
    }
  }

  /**
   * The side that started second is killed (workers and all) while the gloo group runs; the first
   * (agent 0, store host) re-rendezvouses alone ({@code --nnodes 1:2}) and finishes.
   */
  @ParameterizedTest(name = "{0}, {1} first")
  @MethodSource("torchAndFirst")
  void whenTheOtherAgentIsKilledTheSurvivorFinishesAlone(Torch torch, Side first) throws Exception {
    Path done = dir.resolve("done");
    try (MixedJob job = new MixedJob(torch, "c10d", first).noticeLossWithin(10)) {
      Map<String, String> env = new java.util.HashMap<>(pytorchRestartEnv(torch, first));
      env.put("ELASTIC_DONE", done.toString());
      job.start(GlooWorkersTest.script("elastic.py").toString(), 1, "1:2", env);
      Await.until(
          "both agents' workers in one group of 4",
          JOB,
          () -> job.rdzv.output().contains("world 4") && job.torchrun.output().contains("world 4"));
      Files.createFile(done);
      job.side(first.other()).killTree();

      org.rdzv.testing.ChildProcess survivor = job.side(first);
      assertThat(survivor.awaitExit(JOB)).as(job.output()).isZero();
      assertThat(survivor.output()).contains("done rank 0 world 2 sum 2");
      if (first == Side.RDZV) {
        List<MixedJob.Round> rounds = job.rdzvRounds();
        assertThat(rounds.getLast().groupWorldSize()).as(job.output()).isEqualTo(1);
      }
    }
  }
}
