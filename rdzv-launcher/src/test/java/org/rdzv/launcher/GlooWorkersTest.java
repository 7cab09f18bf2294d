package org.rdzv.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.testing.Torch;

/**
 * Real PyTorch workers (1.13 and 2.6, gloo, {@code init_process_group} with env://) under our
 * agents alone, on our c10d rendezvous and on static: the workers' store is the one agent 0 hosts.
 */
@Timeout(180)
class GlooWorkersTest {
  static final Path EXAMPLES = Path.of(System.getProperty("user.dir")).resolveSibling("examples");

  static Path script(String name) {
    try {
      return Path.of(GlooWorkersTest.class.getResource("/py/" + name).toURI());
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  private final ByteArrayOutputStream console = new ByteArrayOutputStream();
  private final List<AgentEvent> events = new CopyOnWriteArrayList<>();

  private LaunchConfig.Builder python(RendezvousParameters p, int nproc, Path script) {
    return python(Torch.V1_13, p, nproc, script);
  }

  private LaunchConfig.Builder python(Torch torch, RendezvousParameters p, int nproc, Path script) {
    List<String> command = new ArrayList<>(torch.python());
    command.add("-u");
    command.add(script.toString());
    return LaunchConfig.builder(p, command)
        .entrypointName(script.getFileName().toString())
        .nprocPerNode(nproc)
        .tee(Std.ALL)
        .stopTimeout(Duration.ofSeconds(5))
        .out(new PrintStream(console, true, StandardCharsets.UTF_8))
        .err(new PrintStream(console, true, StandardCharsets.UTF_8));
  }

  private static RendezvousParameters standalone() {
    return Launcher.withDefaults(
        new RendezvousParameters("c10d", "localhost:0", UUID.randomUUID().toString(), 1, 1));
  }

  private String output() {
    return console.toString(StandardCharsets.UTF_8);
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void standaloneTwoWorkersAllReduceOverTheAgentsStore(Torch torch) {
    torch.require();
    RunResult result =
        Launcher.launch(
            python(torch, standalone(), 2, EXAMPLES.resolve("allreduce.py")).build(), events::add);

    assertThat(result.state()).as(output()).isEqualTo(WorkerState.SUCCEEDED);
    assertThat(output())
        .contains("[rank0]:rank 0/2 (local 0, node 0): all_reduce sum = 3, expected 3")
        .contains("[rank1]:rank 1/2 (local 1, node 0): all_reduce sum = 3, expected 3");
    AgentEvent.RendezvousCompleted rdzv = (AgentEvent.RendezvousCompleted) events.get(0);
    assertThat(rdzv.useAgentStore()).isTrue();
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void twoLaunchersOnLoopbackRunFourWorkersOverC10d(Torch torch) throws Exception {
    torch.require();
    try (TcpStoreServer rdzvStore = TcpStoreServer.start("127.0.0.1", 0)) {
      RendezvousParameters p =
          Launcher.withDefaults(
              new RendezvousParameters(
                  "c10d",
                  "127.0.0.1:" + rdzvStore.port(),
                  "two-" + UUID.randomUUID(),
                  2,
                  2,
                  Map.of("is_host", "false", "last_call_timeout", "1")));
      List<CompletableFuture<RunResult>> runs = new ArrayList<>();
      for (int i = 0; i < 2; i++) {
        LaunchConfig config = python(torch, p, 2, EXAMPLES.resolve("allreduce.py")).build();
        runs.add(async(() -> Launcher.launch(config, events::add)));
      }
      for (CompletableFuture<RunResult> run : runs) {
        assertThat(run.get(150, TimeUnit.SECONDS).state())
            .as(output())
            .isEqualTo(WorkerState.SUCCEEDED);
      }
    }
    for (int rank = 0; rank < 4; rank++) {
      assertThat(output())
          .contains(
              "[rank"
                  + rank
                  + "]:rank "
                  + rank
                  + "/4 (local "
                  + rank % 2
                  + ", node "
                  + rank / 2
                  + "): all_reduce sum = 10");
    }
    assertThat(events)
        .filteredOn(e -> e instanceof AgentEvent.RendezvousCompleted)
        .extracting(e -> ((AgentEvent.RendezvousCompleted) e).groupRank())
        .containsExactlyInAnyOrder(0, 1);
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void twoLaunchersOnTheStaticBackendShareNodeZerosStore(Torch torch) throws Exception {
    torch.require();
    int port = org.rdzv.testing.FreePort.next();
    List<CompletableFuture<RunResult>> runs = new ArrayList<>();
    for (int node = 0; node < 2; node++) {
      RendezvousParameters p =
          Launcher.withDefaults(
              new RendezvousParameters(
                  "static", "127.0.0.1:" + port, "static-" + port, 2, 2, Map.of("rank", node)));
      LaunchConfig config = python(torch, p, 2, EXAMPLES.resolve("allreduce.py")).build();
      runs.add(async(() -> Launcher.launch(config, events::add)));
    }
    for (CompletableFuture<RunResult> run : runs) {
      assertThat(run.get(150, TimeUnit.SECONDS).state())
          .as(output())
          .isEqualTo(WorkerState.SUCCEEDED);
    }
    for (int rank = 0; rank < 4; rank++) {
      assertThat(output())
          .contains(
              "[rank"
                  + rank
                  + "]:rank "
                  + rank
                  + "/4 (local "
                  + rank % 2
                  + ", node "
                  + rank / 2
                  + "): all_reduce sum = 10");
    }
    // PyTorch 1.13's static rule: workers are clients of the rendezvous endpoint's store.
    assertThat(events)
        .filteredOn(e -> e instanceof AgentEvent.RendezvousCompleted)
        .allMatch(
            e ->
                ((AgentEvent.RendezvousCompleted) e).useAgentStore()
                    && ((AgentEvent.RendezvousCompleted) e).masterPort() == port);
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void underAPytorch2StateDialectTheHandlersBootstrapInformationIsUsed(Torch torch) {
    torch.require();
    RendezvousParameters p = standalone().with("state_dialect", "2.6+");
    RunResult result =
        Launcher.launch(python(torch, p, 2, EXAMPLES.resolve("allreduce.py")).build(), events::add);

    assertThat(result.state()).as(output()).isEqualTo(WorkerState.SUCCEEDED);
    assertThat(output())
        .contains("[rank1]:rank 1/2 (local 1, node 0): all_reduce sum = 3, expected 3");
    AgentEvent.RendezvousCompleted rdzv = (AgentEvent.RendezvousCompleted) events.get(0);
    // PyTorch 2.x's contract: agent 0's handler serves the bootstrap store, workers are clients.
    assertThat(rdzv.useAgentStore()).isTrue();
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void aWorkerFailingOnceIsRestartedAndTheJobSucceeds(Torch torch) {
    torch.require();
    RunResult result =
        Launcher.launch(
            python(torch, standalone(), 2, script("flaky.py")).maxRestarts(1).build(), events::add);

    assertThat(result.state()).as(output()).isEqualTo(WorkerState.SUCCEEDED);
    assertThat(result.restarts()).isEqualTo(1);
    assertThat(output())
        .contains("[rank0]:rank 0 restart 1 sum 3", "[rank1]:rank 1 restart 1 sum 3");
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void aWorkerFailingWithNoRestartsLeftFailsTheJobWithItsTraceback(Torch torch) {
    torch.require();
    RunResult result =
        Launcher.launch(
            python(torch, standalone(), 2, script("flaky.py")).maxRestarts(0).build(), events::add);

    assertThat(result.state()).as(output()).isEqualTo(WorkerState.FAILED);
    ProcessFailure failure = result.failures().get(1);
    assertThat(failure).as("failures: %s", result.failures()).isNotNull();
    assertThat(failure.exitCode()).isEqualTo(1);
    assertThat(failure.errorFile()).isNotNull();
    String summary =
        FailureSummary.format("flaky.py", result.failures(), "localhost", ZoneId.systemDefault());
    assertThat(summary)
        .contains("flaky.py FAILED")
        .contains("rank      : 1 (local_rank: 1)")
        .contains("RuntimeError: boom from rank 1")
        .contains("Traceback (most recent call last):");
  }

  @Test
  void theJavaWorkerExampleSumsOverTheStore() {
    RunResult result =
        Launcher.launch(
            python(standalone(), 2, EXAMPLES.resolve("StoreSum.java"))
                .command(
                    List.of(
                        ProcessHandle.current().info().command().orElse("java"),
                        "-cp",
                        System.getProperty("java.class.path"),
                        EXAMPLES.resolve("StoreSum.java").toString()))
                .build(),
            events::add);

    assertThat(result.state()).as(output()).isEqualTo(WorkerState.SUCCEEDED);
    assertThat(output())
        .contains("[rank0]:rank 0/2 (local 0, node 0, restart 0): store sum = 3, expected 3")
        .contains("[rank1]:rank 1/2 (local 1, node 0, restart 0): store sum = 3, expected 3");
  }

  static <T> CompletableFuture<T> async(java.util.function.Supplier<T> body) {
    CompletableFuture<T> f = new CompletableFuture<>();
    Thread.ofPlatform()
        .daemon()
        .start(
            () -> {
              try {
                f.complete(body.get());
              } catch (Throwable t) {
                f.completeExceptionally(t);
              }
            });
    return f;
  }
}
