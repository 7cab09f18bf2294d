package org.rdzv.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.testing.Await;

/** The agent with real worker processes (sh), on a one-node rendezvous over a real TCP store. */
@Timeout(60)
class LocalElasticAgentTest {
  @TempDir Path dir;

  private final SingleNodeHandler handler = new SingleNodeHandler("agenttest");
  private final List<AgentEvent> events = new CopyOnWriteArrayList<>();

  @AfterEach
  void close() {
    handler.close();
  }

  private LaunchConfig.Builder config(int nproc, String script) {
    return LaunchConfig.builder(
            new RendezvousParameters("test", "", "agenttest", 1, 1), List.of("sh", "-c", script))
        .nprocPerNode(nproc)
        .putEnvironment("OUT_DIR", dir.toString())
        .stopTimeout(Duration.ofSeconds(5));
  }

  private RunResult run(LaunchConfig config) {
    return ElasticAgent.create(config, handler, events::add).run();
  }

  private Map<String, String> readEnv(Path file) throws IOException {
    Map<String, String> env = new LinkedHashMap<>();
    for (String line : Files.readAllLines(file)) {
      int eq = line.indexOf('=');
      if (eq > 0) {
        env.put(line.substring(0, eq), line.substring(eq + 1));
      }
    }
    return env;
  }

  private <T extends AgentEvent> List<T> events(Class<T> type) {
    List<T> found = new ArrayList<>();
    for (AgentEvent e : events) {
      if (type.isInstance(e)) {
        found.add(type.cast(e));
      }
    }
    return found;
  }

  @Test
  void workersGetPytorchsEnvironmentContract() throws IOException {
    RunResult result =
        run(config(2, "env > \"$OUT_DIR/env.$LOCAL_RANK\"").maxRestarts(3).role("trainer").build());

    assertThat(result.state()).isEqualTo(WorkerState.SUCCEEDED);
    assertThat(result.restarts()).isZero();
    assertThat(result.rounds()).isEqualTo(1);
    AgentEvent.RendezvousCompleted rdzv = events(AgentEvent.RendezvousCompleted.class).get(0);
    for (int local = 0; local < 2; local++) {
      Map<String, String> env = readEnv(dir.resolve("env." + local));
      assertThat(env)
          .containsEntry("LOCAL_RANK", "" + local)
          .containsEntry("RANK", "" + local)
          .containsEntry("GROUP_RANK", "0")
          .containsEntry("ROLE_RANK", "" + local)
          .containsEntry("ROLE_NAME", "trainer")
          .containsEntry("LOCAL_WORLD_SIZE", "2")
          .containsEntry("WORLD_SIZE", "2")
          .containsEntry("GROUP_WORLD_SIZE", "1")
          .containsEntry("ROLE_WORLD_SIZE", "2")
          .containsEntry("MASTER_ADDR", rdzv.masterAddr())
          .containsEntry("MASTER_PORT", "" + rdzv.masterPort())
          .containsEntry("TORCHELASTIC_RESTART_COUNT", "0")
          .containsEntry("TORCHELASTIC_MAX_RESTARTS", "3")
          .containsEntry("TORCHELASTIC_RUN_ID", "agenttest")
          .containsEntry("TORCHELASTIC_USE_AGENT_STORE", "True")
          .containsKey("NCCL_ASYNC_ERROR_HANDLING");
      assertThat(env.get("TORCHELASTIC_ERROR_FILE"))
          .endsWith("/attempt_0/" + local + "/error.json");
      if (System.getenv("OMP_NUM_THREADS") == null) {
        assertThat(env).containsEntry("OMP_NUM_THREADS", "1");
      }
    }
    assertThat(rdzv.useAgentStore()).isTrue();
    // The exit barrier ran on the round's store, with PyTorch 1.13's keys.
    assertThat(
            handler.client.check(
                List.of(
                    "test.rdzv.0/torchelastic/agent/terminal_state0.FIN",
                    "test.rdzv.0/torchelastic/role_info0",
                    "test.rdzv.0/MASTER_PORT")))
        .isTrue();
  }

  @Test
  void aFailedWorkerRestartsTheGroupWhichThenSucceeds() {
    RunResult result =
        run(config(2, "[ \"$TORCHELASTIC_RESTART_COUNT\" = 1 ] || exit 3").maxRestarts(1).build());

    assertThat(result.state()).isEqualTo(WorkerState.SUCCEEDED);
    assertThat(result.restarts()).isEqualTo(1);
    assertThat(result.rounds()).isEqualTo(2);
    assertThat(handler.rounds.get()).isEqualTo(2);
    assertThat(events(AgentEvent.WorkersStarted.class))
        .extracting(AgentEvent.WorkersStarted::restartCount)
        .containsExactly(0, 1);
  }

  @Test
  void aFailureWithNoRestartsLeftEndsAtOnceAndNamesTheWorker() {
    String script =
        """
        if [ "$LOCAL_RANK" = 1 ]; then
          printf '{"message": {"message": "RuntimeError: boom", "extraInfo": {"py_callstack": "Traceback: boom\\\\nline two", "timestamp": "1795719036"}}}' > "$TORCHELASTIC_ERROR_FILE"
          exit 3
        fi
        exec sleep 60
        """;
    long start = System.nanoTime();
    RunResult result = run(config(2, script).maxRestarts(0).build());
    Duration took = Duration.ofNanos(System.nanoTime() - start);

    assertThat(result.state()).isEqualTo(WorkerState.FAILED);
    assertThat(took).isLessThan(Duration.ofSeconds(15)); // not the 60 s of the sleeping worker
    assertThat(result.failures()).containsOnlyKeys(1);
    ProcessFailure failure = result.failures().get(1);
    assertThat(failure.localRank()).isEqualTo(1);
    assertThat(failure.exitCode()).isEqualTo(3);
    assertThat(failure.message()).isEqualTo("Traceback: boom\nline two");
    assertThat(failure.timestamp().getEpochSecond()).isEqualTo(1795719036L);
    assertThat(failure.errorFile()).isNotNull();
    String summary = FailureSummary.format("sh", result.failures(), "localhost", ZoneId.of("UTC"));
    assertThat(summary)
        .contains("sh FAILED")
        .contains("  rank      : 1 (local_rank: 1)")
        .contains("  exitcode  : 3 (pid: " + failure.pid() + ")")
        .contains("  traceback : Traceback: boom\n  line two");
  }

  @Test
  void aWorkerKilledBySignalIsReportedAsPytorchDoes() {
    RunResult result = run(config(1, "kill -9 $$").build());

    assertThat(result.state()).isEqualTo(WorkerState.FAILED);
    ProcessFailure failure = result.failures().get(0);
    assertThat(failure.exitCode()).isEqualTo(-9);
    assertThat(failure.signalName()).isEqualTo("SIGKILL");
    assertThat(failure.errorFile()).isNull();
    assertThat(failure.message()).isEqualTo("Signal 9 (SIGKILL) received by PID " + failure.pid());
  }

  @Test
  void stopEndsTheWorkersAndEverythingTheyStarted() throws Exception {
    String script = "sleep 300 & echo $! > \"$OUT_DIR/child.$LOCAL_RANK\"; wait";
    ElasticAgent agent = ElasticAgent.create(config(2, script).build(), handler, events::add);
    CompletableFuture<RunResult> run = runInThread(agent);
    Await.until(
        "children started",
        Duration.ofSeconds(20),
        () -> Files.exists(dir.resolve("child.0")) && Files.exists(dir.resolve("child.1")));
    List<Long> pids = new ArrayList<>(agent.workerPids().values());
    pids.add(Long.parseLong(Files.readString(dir.resolve("child.0")).strip()));
    pids.add(Long.parseLong(Files.readString(dir.resolve("child.1")).strip()));
    assertThat(pids).hasSize(4).allMatch(LocalElasticAgentTest::alive);

    agent.stop();

    assertThat(run.get(20, TimeUnit.SECONDS).state()).isEqualTo(WorkerState.STOPPED);
    assertThat(pids).noneMatch(LocalElasticAgentTest::alive);
    assertThat(handler.shutDown).isFalse(); // the agent leaves the rendezvous open
  }

  @Test
  void aWorkerThatIgnoresSigtermIsKilledAfterTheGrace() throws Exception {
    ElasticAgent agent =
        ElasticAgent.create(
            config(1, "trap '' TERM; touch \"$OUT_DIR/ready\"; while :; do sleep 1; done")
                .stopTimeout(Duration.ofMillis(500))
                .build(),
            handler,
            events::add);
    CompletableFuture<RunResult> run = runInThread(agent);
    Await.until("worker ready", Duration.ofSeconds(20), () -> Files.exists(dir.resolve("ready")));
    long pid = agent.workerPids().get(0);

    agent.stop();

    assertThat(alive(pid)).isFalse();
    assertThat(run.get(20, TimeUnit.SECONDS).state()).isEqualTo(WorkerState.STOPPED);
  }

  @Test
  void nodesWaitingToJoinRestartTheGroupWithoutUsingTheBudget() throws Exception {
    String script =
        "[ -f \"$OUT_DIR/go\" ] && exit 0; touch \"$OUT_DIR/up.$LOCAL_RANK\"; exec sleep 300";
    ElasticAgent agent =
        ElasticAgent.create(
            config(2, script).monitorInterval(Duration.ofMillis(50)).build(), handler, events::add);
    CompletableFuture<RunResult> run = runInThread(agent);
    Await.until(
        "first workers up",
        Duration.ofSeconds(20),
        () -> Files.exists(dir.resolve("up.0")) && Files.exists(dir.resolve("up.1")));
    Files.createFile(dir.resolve("go"));

    handler.waiting.set(1);

    RunResult result = run.get(30, TimeUnit.SECONDS);
    assertThat(result.state()).isEqualTo(WorkerState.SUCCEEDED);
    assertThat(result.restarts()).isZero();
    assertThat(result.rounds()).isEqualTo(2);
    assertThat(events(AgentEvent.WorkersStarted.class))
        .extracting(AgentEvent.WorkersStarted::restartCount)
        .containsExactly(0, 0);
  }

  @Test
  void teePrefixesConsoleLinesWithTheRankAndKeepsPerAttemptLogs() throws IOException {
    ByteArrayOutputStream console = new ByteArrayOutputStream();
    Path logs = dir.resolve("logs");
    RunResult result =
        run(
            config(2, "echo \"hello from $RANK\"; echo \"oops $RANK\" >&2")
                .tee(Std.OUT)
                .redirects(Std.ERR)
                .logDir(logs)
                .out(new PrintStream(console, true, StandardCharsets.UTF_8))
                .err(new PrintStream(console, true, StandardCharsets.UTF_8))
                .build());

    assertThat(result.isSuccess()).isTrue();
    String text = console.toString(StandardCharsets.UTF_8);
    assertThat(text)
        .contains("[rank0]:hello from 0\n", "[rank1]:hello from 1\n")
        .doesNotContain("oops");
    try (var runDirs = Files.list(logs)) {
      Path runDir = runDirs.findFirst().orElseThrow();
      assertThat(runDir.getFileName().toString()).startsWith("agenttest_");
      assertThat(Files.readString(runDir.resolve("attempt_0/1/stdout.log")))
          .isEqualTo("hello from 1\n");
      assertThat(Files.readString(runDir.resolve("attempt_0/0/stderr.log"))).isEqualTo("oops 0\n");
    }
  }

  @Test
  void localRanksFilterKeepsOtherRanksOffTheConsoleButInTheirFiles() throws IOException {
    ByteArrayOutputStream console = new ByteArrayOutputStream();
    Path logs = dir.resolve("logs");
    RunResult result =
        run(
            config(3, "echo \"out $RANK\"; echo \"err $RANK\" >&2")
                .tee(Map.of(0, Std.ALL, 1, Std.ALL))
                .localRanksFilter(java.util.Set.of(1, 2))
                .logDir(logs)
                .out(new PrintStream(console, true, StandardCharsets.UTF_8))
                .err(new PrintStream(console, true, StandardCharsets.UTF_8))
                .build());

    assertThat(result.isSuccess()).isTrue();
    String text = console.toString(StandardCharsets.UTF_8);
    // rank 1 is tee'd, rank 2 writes to the console as it is; rank 0 is filtered out.
    assertThat(text)
        .contains("[rank1]:out 1\n", "[rank1]:err 1\n", "out 2\n", "err 2\n")
        .doesNotContain("out 0", "err 0");
    try (var runDirs = Files.list(logs)) {
      Path attempt = runDirs.findFirst().orElseThrow().resolve("attempt_0");
      assertThat(Files.readString(attempt.resolve("0/stdout.log"))).isEqualTo("out 0\n");
      assertThat(Files.readString(attempt.resolve("0/stderr.log"))).isEqualTo("err 0\n");
      assertThat(Files.readString(attempt.resolve("1/stdout.log"))).isEqualTo("out 1\n");
    }
  }

  @Test
  void aGracefulExitFromTheRendezvousIsASuccess() {
    handler.failNext = new org.rdzv.api.RendezvousGracefulExitException("the rendezvous is closed");
    RunResult result = run(config(1, "exit 1").build());
    assertThat(result.state()).isEqualTo(WorkerState.SUCCEEDED);
    assertThat(events(AgentEvent.WorkersStarted.class)).isEmpty();
  }

  @Test
  void aRendezvousErrorPropagates() {
    handler.failNext = new org.rdzv.api.RendezvousTimeoutException("no quorum");
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> run(config(1, "true").build()))
        .isInstanceOf(org.rdzv.api.RendezvousTimeoutException.class);
  }

  @Test
  void aProgramThatCannotStartIsAClearError() {
    LaunchConfig config =
        LaunchConfig.builder(
                new RendezvousParameters("test", "", "agenttest", 1, 1),
                List.of(dir.resolve("nope").toString()))
            .build();
    org.assertj.core.api.Assertions.assertThatThrownBy(() -> run(config))
        .isInstanceOf(java.io.UncheckedIOException.class)
        .hasMessageContaining("cannot start worker program " + dir.resolve("nope"));
  }

  /** Runs the agent on its own thread (not the common pool, which the JDK's own work needs). */
  static CompletableFuture<RunResult> runInThread(ElasticAgent agent) {
    CompletableFuture<RunResult> result = new CompletableFuture<>();
    Thread.ofPlatform()
        .name("agent-under-test")
        .daemon()
        .start(
            () -> {
              try {
                result.complete(agent.run());
              } catch (Throwable t) {
                result.completeExceptionally(t);
              }
            });
    return result;
  }

  /**
   * Whether {@code pid} runs. A zombie does not: a killed orphan stays one until an init process
   * that reaps reaps it, which some containers lack.
   */
  static boolean alive(long pid) {
    if (!ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
      return false;
    }
    try {
      String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
      return stat.charAt(stat.lastIndexOf(')') + 2) != 'Z';
    } catch (IOException | RuntimeException e) {
      return true; // not Linux, or gone meanwhile: trust ProcessHandle
    }
  }
}
