package org.rdzv.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.testing.ChildProcess;
import org.rdzv.testing.Peers;
import org.rdzv.testing.Torch;

/** Our agent and a real torchrun 1.13 agent in one job: one c10d rendezvous, one gloo group. */
@Timeout(180)
class TorchrunInteropTest {

  @Test
  void aJavaAgentAndATorchrunAgentRunOneGlooJob() throws Exception {
    Job job = run(GlooWorkersTest.EXAMPLES.resolve("allreduce.py").toString(), 0);
    AgentEvent.RendezvousCompleted rdzv = job.rounds().get(0);
    // A torchrun agent takes part, so PyTorch 1.13's rule holds: worker rank 0 hosts the store.
    assertThat(rdzv.useAgentStore()).isFalse();
    assertThat(rdzv.worldSize()).isEqualTo(4);
    int base = rdzv.groupRank() * 2;
    int other = 2 - base;
    assertThat(job.ours)
        .contains(
            "[rank"
                + base
                + "]:rank "
                + base
                + "/4 (local 0, node "
                + rdzv.groupRank()
                + "): all_reduce sum = 10");
    assertThat(job.theirs)
        .contains(
            "rank "
                + other
                + "/4 (local 0, node "
                + (1 - rdzv.groupRank())
                + "): all_reduce sum = 10");
  }

  /** Global rank 1 fails once: whichever agent hosts it restarts, and the other follows. */
  @Test
  void aFailureOnEitherSideRestartsBothAgentsIntoANewRound() throws Exception {
    Job job = run(GlooWorkersTest.script("flaky.py").toString(), 1);
    assertThat(job.rounds()).hasSize(2);
    String all = job.ours + "\n" + job.theirs;
    for (int rank = 0; rank < 4; rank++) {
      assertThat(all).containsPattern("rank " + rank + " restart [01] sum 10");
    }
  }

  record Job(RunResult result, List<AgentEvent> events, String ours, String theirs) {
    List<AgentEvent.RendezvousCompleted> rounds() {
      return events.stream()
          .filter(e -> e instanceof AgentEvent.RendezvousCompleted)
          .map(e -> (AgentEvent.RendezvousCompleted) e)
          .toList();
    }
  }

  /** One torchrun 1.13 agent and one of ours, two workers each, c10d on a store the test hosts. */
  private static Job run(String script, int maxRestarts) throws Exception {
    Torch.V1_13.require();
    String runId = "mixed-" + UUID.randomUUID();
    try (TcpStoreServer rdzvStore = TcpStoreServer.start("127.0.0.1", 0)) {
      String endpoint = "127.0.0.1:" + rdzvStore.port();
      try (ChildProcess torchrun =
          ChildProcess.start(
              Stream.concat(
                      Torch.V1_13.torchrun().stream(),
                      Stream.of(
                          "--nnodes=2",
                          "--nproc_per_node=2",
                          "--rdzv_backend=c10d",
                          "--rdzv_endpoint=" + endpoint,
                          "--rdzv_id=" + runId,
                          "--rdzv_conf=is_host=false,last_call_timeout=1",
                          "--max_restarts=" + maxRestarts,
                          "--monitor_interval=1",
                          "--tee=3",
                          script))
                  .toList(),
              Map.of())) {
        List<AgentEvent> events = new CopyOnWriteArrayList<>();
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        RendezvousParameters p =
            Launcher.withDefaults(
                new RendezvousParameters(
                    "c10d",
                    endpoint,
                    runId,
                    2,
                    2,
                    null,
                    Map.of(
                        "is_host", "false", "last_call_timeout", "1", "store_protocol", "1.13")));
        LaunchConfig config =
            LaunchConfig.builder(p, List.of(Peers.PYTHON, "-u", script))
                .nprocPerNode(2)
                .maxRestarts(maxRestarts)
                .tee(Std.ALL)
                .stopTimeout(Duration.ofSeconds(5))
                .out(new PrintStream(console, true, StandardCharsets.UTF_8))
                .err(new PrintStream(console, true, StandardCharsets.UTF_8))
                .build();
        CompletableFuture<RunResult> ours =
            GlooWorkersTest.async(() -> Launcher.launch(config, events::add));

        RunResult result = ours.get(150, TimeUnit.SECONDS);
        String out = console.toString(StandardCharsets.UTF_8);
        assertThat(result.state())
            .as(out + "\n--- torchrun:\n" + torchrun.output())
            .isEqualTo(WorkerState.SUCCEEDED);
        assertThat(torchrun.awaitExit(Duration.ofSeconds(60))).as(torchrun.output()).isZero();
        return new Job(result, events, out, torchrun.output());
      }
    }
  }
}
