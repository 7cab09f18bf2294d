package org.rdzv.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.events.Event;
import org.rdzv.api.events.EventRecorder;
import org.rdzv.api.events.EventSource;
import org.rdzv.api.events.Events;
import org.rdzv.testing.Await;

/**
 * The agent's meters, PyTorch's agent events and torchrun's failure lines, for a job whose worker
 * fails once and is restarted (real worker processes, a one-node rendezvous over a real store).
 */
@Timeout(60)
class AgentObservabilityTest {
  private final SingleNodeHandler handler = new SingleNodeHandler("obs-agent");
  private final MeterRegistry registry = new SimpleMeterRegistry();
  private final List<Event> recorded = new CopyOnWriteArrayList<>();
  private final EventRecorder recorder =
      e -> {
        if (e instanceof Event ev && "obs-agent".equals(ev.metadata().get("run_id"))) {
          recorded.add(ev);
        }
      };
  private final List<String> logLines = new CopyOnWriteArrayList<>();
  private final Logger launcherLogger = Logger.getLogger("org.rdzv.launcher");
  private final Handler logCapture =
      new Handler() {
        @Override
        public void publish(LogRecord r) {
          logLines.add(
              r.getLevel() + " " + new java.util.logging.SimpleFormatter().formatMessage(r));
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
      };

  @BeforeEach
  void start() {
    Events.add(recorder);
    launcherLogger.addHandler(logCapture);
  }

  @AfterEach
  void stop() {
    launcherLogger.removeHandler(logCapture);
    Events.remove(recorder);
    handler.close();
  }

  @TempDir Path dir;

  /**
   * Local rank 0 fails in the first attempt while rank 1 waits; in the second both wait for the
   * test's gate file, then succeed.
   */
  private static final String FAIL_ONCE =
      "if [ \"$TORCHELASTIC_RESTART_COUNT\" = 0 ]; then"
          + " if [ \"$LOCAL_RANK\" = 0 ]; then exit 3; fi; exec sleep 30; fi;"
          + " while [ ! -e \"$GATE\" ]; do sleep 0.02; done; exit 0";

  private LaunchConfig config() {
    return LaunchConfig.builder(
            new RendezvousParameters("test", "", "obs-agent", 1, 1), List.of("sh", "-c", FAIL_ONCE))
        .nprocPerNode(2)
        .maxRestarts(2)
        .role("trainer")
        .putEnvironment("GATE", dir.resolve("gate").toString())
        .stopTimeout(Duration.ofSeconds(5))
        .meterRegistry(registry)
        .build();
  }

  private double gauge(String name) {
    return registry.get(name).gauge().value();
  }

  private double count(String name, String tag, String value) {
    Counter c = registry.find(name).tag(tag, value).counter();
    return c == null ? 0 : c.count();
  }

  @Test
  void aRestartedJobIsMeasuredRecordedAndLoggedAsTorchrunDoes() throws Exception {
    AtomicReference<Double> successfulExits = new AtomicReference<>();
    ElasticAgent agent =
        ElasticAgent.create(
            config(),
            handler,
            event -> {
              if (event instanceof AgentEvent.WorkersExited x
                  && x.state() == WorkerState.SUCCEEDED) {
                successfulExits.set(count(AgentMetrics.WORKER_EXITS, "exit_code", "0"));
              }
            });
    CompletableFuture<RunResult> run = CompletableFuture.supplyAsync(agent::run);
    Await.until(
        "the second attempt runs",
        Duration.ofSeconds(30),
        () ->
            registry.find(AgentMetrics.WORKERS).gauge() != null
                && gauge(AgentMetrics.WORKERS) == 2
                && registry.get(AgentMetrics.ROUNDS).counter().count() == 2);
    Counter rounds = registry.get(AgentMetrics.ROUNDS).counter();
    assertThat(count(AgentMetrics.RESTARTS, "reason", "failure")).isEqualTo(1);
    assertThat(count(AgentMetrics.RESTARTS, "reason", "nodes_waiting")).isZero();
    assertThat(count(AgentMetrics.WORKER_EXITS, "exit_code", "3")).isEqualTo(1);
    assertThat(registry.find(AgentMetrics.WORKER_EXITS).tag("exit_code", "-15").counter())
        .as("a worker the agent stopped did not end by itself")
        .isNull();
    assertThat(gauge(AgentMetrics.REMAINING_RESTARTS)).isEqualTo(1);
    assertThat(gauge(AgentMetrics.WORLD_SIZE)).isEqualTo(2);
    assertThat(gauge(AgentMetrics.GROUP_WORLD_SIZE)).isEqualTo(1);
    assertThat(gauge(AgentMetrics.GROUP_RANK)).isZero();
    assertThat(registry.get(AgentMetrics.RENDEZVOUS).timer().count()).isEqualTo(2);
    assertThat(rounds.getId().getTag("role")).isEqualTo("trainer");
    assertThat(rounds.getId().getTag("run_id")).isEqualTo("obs-agent");
    Files.createFile(dir.resolve("gate"));
    RunResult result = run.get(30, TimeUnit.SECONDS);
    assertThat(result.state()).isEqualTo(WorkerState.SUCCEEDED);
    assertThat(successfulExits.get()).isEqualTo(2.0);
    // The run's meters are gone from the registry once it is over.
    assertThat(registry.find(AgentMetrics.ROUNDS).counter()).isNull();

    // PyTorch's events: each attempt's rendezvous and rank assignment, the failed attempt's
    // workers, the last attempt's workers, the agent.
    assertThat(recorded)
        .extracting(e -> e.source() + " " + e.name().replace("torchelastic.worker.status.", ""))
        .containsExactly(
            "AGENT RENDEZVOUS",
            "AGENT ASSIGN_WORKER_RANKS",
            "WORKER FAILED",
            "WORKER TERMINATED",
            "AGENT RENDEZVOUS",
            "AGENT ASSIGN_WORKER_RANKS",
            "WORKER SUCCEEDED",
            "WORKER SUCCEEDED",
            "AGENT SUCCEEDED");
    Event failed = recorded.get(2);
    assertThat(failed.metadata().keySet())
        .containsExactly(
            "run_id",
            "global_rank",
            "group_rank",
            "worker_id",
            "role",
            "hostname",
            "state",
            "total_run_time",
            "rdzv_backend",
            "raw_error",
            "metadata",
            "agent_restarts",
            "duration_ms");
    assertThat(failed.metadata())
        .containsEntry("run_id", "obs-agent")
        .containsEntry("global_rank", 0)
        .containsEntry("group_rank", 0)
        .containsEntry("role", "trainer")
        .containsEntry("state", "FAILED")
        .containsEntry("rdzv_backend", "test")
        .containsEntry("raw_error", "{\"message\": \"<NONE>\"}")
        .containsEntry("agent_restarts", 0)
        .containsEntry("duration_ms", null)
        .containsEntry(
            "metadata",
            "{\"group_world_size\": 1, \"entry_point\": \"sh\", \"local_rank\": [0],"
                + " \"role_rank\": [0], \"role_world_size\": [2]}");
    assertThat(failed.source()).isEqualTo(EventSource.WORKER);
    assertThat((String) failed.metadata().get("worker_id")).matches("\\d+");
    assertThat(failed.timestamp()).isPositive();
    assertThat(recorded.get(3).metadata()).containsEntry("raw_error", null);
    Event secondRendezvous = recorded.get(4);
    assertThat(secondRendezvous.metadata())
        .containsEntry("agent_restarts", 1)
        .containsEntry("worker_id", null)
        .containsEntry("metadata", "{\"group_world_size\": 1, \"entry_point\": \"sh\"}");
    assertThat((Double) secondRendezvous.metadata().get("duration_ms")).isNotNegative();
    assertThat(recorded.get(8).metadata()).containsEntry("agent_restarts", 1);

    // torchrun's lines: the closing signal for the survivor, then the first failure.
    int closing = indexOf("WARNING Sending process ", " closing signal SIGTERM");
    int firstFailure =
        indexOf("SEVERE failed (exitcode: 3) local_rank: 0 (pid: ", ") of binary: sh");
    assertThat(closing).as(String.join("\n", logLines)).isNotNegative();
    assertThat(firstFailure).as(String.join("\n", logLines)).isGreaterThan(closing);
  }

  @Test
  void aStoppedRunIsAFailedAgentEvent() throws Exception {
    ElasticAgent agent =
        ElasticAgent.create(
            LaunchConfig.builder(
                    new RendezvousParameters("test", "", "obs-agent", 1, 1),
                    List.of("sh", "-c", "exec sleep 30"))
                .meterRegistry(registry)
                .stopTimeout(Duration.ofSeconds(5))
                .build(),
            handler,
            null);
    var run = CompletableFuture.supplyAsync(agent::run);
    Await.until("the worker runs", Duration.ofSeconds(30), () -> !agent.workerPids().isEmpty());
    agent.stop();
    assertThat(run.get(30, TimeUnit.SECONDS).state()).isEqualTo(WorkerState.STOPPED);
    Event last = recorded.get(recorded.size() - 1);
    assertThat(last.name()).isEqualTo("torchelastic.worker.status.FAILED");
    assertThat(last.source()).isEqualTo(EventSource.AGENT);
    assertThat((String) last.metadata().get("raw_error")).startsWith("SignalException: ");
    assertThat(registry.find(AgentMetrics.ROUNDS).counter()).isNull();
  }

  private int indexOf(String start, String end) {
    for (int i = 0; i < logLines.size(); i++) {
      String l = logLines.get(i);
      if (l.startsWith(start) && l.endsWith(end)) {
        return i;
      }
    }
    return -1;
  }
}
