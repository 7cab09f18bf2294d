package org.rdzv.worker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.rdzv.api.Store;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.testing.FreePort;
import org.rdzv.testing.PythonProcess;
import org.rdzv.testing.Torch;

/** The Java worker API: the environment contract, the workers' store, the error file. */
@Timeout(60)
class WorkerContextTest {
  @TempDir Path dir;

  private static Map<String, String> env(int rank, int port, boolean agentStore, int restart) {
    Map<String, String> env = new HashMap<>();
    env.put("RANK", "" + rank);
    env.put("LOCAL_RANK", "" + rank % 2);
    env.put("WORLD_SIZE", "4");
    env.put("LOCAL_WORLD_SIZE", "2");
    env.put("GROUP_RANK", "" + rank / 2);
    env.put("GROUP_WORLD_SIZE", "2");
    env.put("ROLE_RANK", "" + rank);
    env.put("ROLE_WORLD_SIZE", "4");
    env.put("ROLE_NAME", "trainer");
    env.put("MASTER_ADDR", "127.0.0.1");
    env.put("MASTER_PORT", "" + port);
    env.put("TORCHELASTIC_RESTART_COUNT", "" + restart);
    env.put("TORCHELASTIC_MAX_RESTARTS", "3");
    env.put("TORCHELASTIC_RUN_ID", "job");
    env.put("TORCHELASTIC_USE_AGENT_STORE", agentStore ? "True" : "False");
    return env;
  }

  @Test
  void readsEveryVariableOfTheContract() {
    WorkerContext ctx = WorkerContext.from(env(3, 1234, true, 2));
    assertThat(ctx)
        .isEqualTo(
            new WorkerContext(
                3, 1, 4, 2, 1, 2, 3, 4, "trainer", "127.0.0.1", 1234, 2, 3, "job", true, null));
    assertThat(ctx.isFirst()).isFalse();
  }

  @Test
  void aMissingOrMalformedVariableIsNamed() {
    Map<String, String> env = env(0, 1, true, 0);
    env.remove("RANK");
    assertThatThrownBy(() -> WorkerContext.from(env))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage(
            "RANK is not set: start this program with an elastic agent (rdzv run, torchrun)");
    Map<String, String> bad = env(0, 1, true, 0);
    bad.put("WORLD_SIZE", "four");
    assertThatThrownBy(() -> WorkerContext.from(bad))
        .hasMessage("WORLD_SIZE is not a number: 'four'");
    Map<String, String> outside = env(0, 1, true, 0);
    outside.put("RANK", "9");
    assertThatThrownBy(() -> WorkerContext.from(outside))
        .hasMessage("RANK 9 is outside WORLD_SIZE 4");
  }

  @Test
  void withAnAgentStoreWorkersAreClientsUnderTheAttemptPrefix() {
    try (TcpStoreServer agentStore = TcpStoreServer.start("127.0.0.1", 0);
        TcpStore observer = TcpStore.connect("127.0.0.1", agentStore.port());
        Store store =
            WorkerContext.from(env(1, agentStore.port(), true, 2))
                .connectStore(Duration.ofSeconds(10))) {
      store.set("x", "1");
      // SET has no reply: wait (with a deadline) for the key under the agent-store prefix.
      observer.await(List.of("/worker/attempt_2/x"), Duration.ofSeconds(10));
      assertThat(observer.check(List.of("/worker/attempt_2/x"))).isTrue();
    }
  }

  @Test
  void withoutAnAgentStoreRankZeroHostsIt() throws Exception {
    int port = FreePort.next();
    try (Store rank0 =
        WorkerContext.from(env(0, port, false, 0)).connectStore(Duration.ofSeconds(10))) {
      CompletableFuture<String> other =
          CompletableFuture.supplyAsync(
              () -> {
                try (Store rank1 =
                    WorkerContext.from(env(1, port, false, 0))
                        .connectStore(Duration.ofSeconds(10))) {
                  return rank1.getString("hello");
                }
              });
      rank0.set("hello", "from rank 0");
      assertThat(other.get(20, TimeUnit.SECONDS)).isEqualTo("from rank 0");
    }
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void errorFilesAreReadByPytorchAsItsOwn(Torch torch) throws Exception {
    torch.require();
    Path file = dir.resolve("error.json");
    ErrorFile.write(
        file, new IllegalStateException("boom \"quoted\" é"), Instant.ofEpochSecond(1795719036L));
    String script =
        """
        import sys
        from torch.distributed.elastic.multiprocessing.errors import ProcessFailure
        f = ProcessFailure(local_rank=0, pid=1, exitcode=1, error_file=sys.argv[1])
        print("MESSAGE", f.message["message"])
        print("TIMESTAMP", f.timestamp)
        print("TRACE", f.message["extraInfo"]["py_callstack"].splitlines()[0])
        """;
    try (PythonProcess py =
        PythonProcess.start(torch, script, List.of(file.toString()), Map.of())) {
      assertThat(py.awaitExit(Duration.ofSeconds(60))).as(py.output()).isZero();
      assertThat(py.lines())
          .contains(
              "MESSAGE java.lang.IllegalStateException: boom \"quoted\" é",
              "TIMESTAMP 1795719036",
              "TRACE java.lang.IllegalStateException: boom \"quoted\" é");
    }
    assertThat(Files.readString(file, StandardCharsets.UTF_8))
        .startsWith("{\"message\": {\"message\": ");
  }

  @Test
  void recordWritesTheErrorFileAndRethrows() {
    assertThatThrownBy(
            () ->
                ErrorFile.record(
                    () -> {
                      throw new IllegalArgumentException("bad");
                    }))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("bad");
  }
}
