package org.rdzv.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousParameters;

/** The worker contract, computed without starting a process. */
class WorkerEnvironmentTest {
  private static final Path ATTEMPT = Path.of("/logs/job_1234abcd/attempt_1");

  private static LaunchConfig.Builder config(int nproc) {
    return LaunchConfig.builder(
            new RendezvousParameters("c10d", "h:1", "job", 2, 2),
            List.of("python3", "-u", "train.py", "--local-rank=${local_rank}"))
        .nprocPerNode(nproc)
        .maxRestarts(3)
        .role("trainer");
  }

  private static WorkerEnvironment.Attempt attempt(AgentProtocol protocol) {
    return new WorkerEnvironment.Attempt(
        1,
        2,
        new Ranks(2, 5, 1, 4),
        new WorkerStore("node0", 29501, true),
        1,
        "job",
        protocol,
        ATTEMPT);
  }

  @Test
  void everyVariableOfPytorch2sContract() {
    List<LocalWorkers.Spec> specs =
        WorkerEnvironment.specs(config(2).build(), attempt(AgentProtocol.V2), Map.of());

    assertThat(specs).hasSize(2);
    LocalWorkers.Spec second = specs.get(1);
    assertThat(second.localRank()).isEqualTo(1);
    assertThat(second.globalRank()).isEqualTo(3);
    assertThat(second.environment())
        .containsExactlyInAnyOrderEntriesOf(
            Map.ofEntries(
                Map.entry("LOCAL_RANK", "1"),
                Map.entry("RANK", "3"),
                Map.entry("GROUP_RANK", "1"),
                Map.entry("ROLE_RANK", "2"),
                Map.entry("ROLE_NAME", "trainer"),
                Map.entry("LOCAL_WORLD_SIZE", "2"),
                Map.entry("WORLD_SIZE", "5"),
                Map.entry("GROUP_WORLD_SIZE", "2"),
                Map.entry("ROLE_WORLD_SIZE", "4"),
                Map.entry("MASTER_ADDR", "node0"),
                Map.entry("MASTER_PORT", "29501"),
                Map.entry("TORCHELASTIC_RESTART_COUNT", "1"),
                Map.entry("TORCHELASTIC_MAX_RESTARTS", "3"),
                Map.entry("TORCHELASTIC_RUN_ID", "job"),
                Map.entry("TORCHELASTIC_USE_AGENT_STORE", "True"),
                Map.entry("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1"),
                Map.entry("OMP_NUM_THREADS", "1"),
                Map.entry("TORCHELASTIC_ERROR_FILE", ATTEMPT.resolve("1/error.json").toString())));
    assertThat(second.command()).containsExactly("python3", "-u", "train.py", "--local-rank=1");
    assertThat(second.dir()).isEqualTo(ATTEMPT.resolve("1"));
    assertThat(second.prefix()).isEqualTo("[rank3]:");
  }

  @Test
  void pytorch113sContractNamesTheOldNcclVariableToo() {
    Map<String, String> env =
        WorkerEnvironment.specs(config(1).build(), attempt(AgentProtocol.V1_13), Map.of())
            .get(0)
            .environment();
    assertThat(env)
        .containsEntry("NCCL_ASYNC_ERROR_HANDLING", "1")
        .containsEntry("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1")
        .doesNotContainKey("OMP_NUM_THREADS"); // one worker: nothing to divide
  }

  @Test
  void inheritedValuesWinOverTheDefaults() {
    Map<String, String> inherited =
        Map.of("OMP_NUM_THREADS", "4", "TORCH_NCCL_ASYNC_ERROR_HANDLING", "3");
    Map<String, String> env =
        WorkerEnvironment.specs(config(2).build(), attempt(AgentProtocol.V2), inherited)
            .get(0)
            .environment();
    // OMP_NUM_THREADS is inherited as it is; the agent does not set it over the user's value.
    assertThat(env)
        .doesNotContainKey("OMP_NUM_THREADS")
        .containsEntry("TORCH_NCCL_ASYNC_ERROR_HANDLING", "3")
        .doesNotContainKey("NCCL_ASYNC_ERROR_HANDLING");
  }

  @Test
  void withoutALogDirectoryEverythingGoesToTheConsoleAndTheErrorFileIsEmpty() {
    WorkerEnvironment.Attempt a = attempt(AgentProtocol.V2);
    WorkerEnvironment.Attempt none =
        new WorkerEnvironment.Attempt(
            a.groupRank(),
            a.groupWorldSize(),
            a.ranks(),
            a.store(),
            a.restartCount(),
            a.runId(),
            a.protocol(),
            null);
    LocalWorkers.Spec spec =
        WorkerEnvironment.specs(config(1).tee(Std.ALL).redirects(Std.ALL).build(), none, Map.of())
            .get(0);
    assertThat(spec.environment()).containsEntry("TORCHELASTIC_ERROR_FILE", "");
    assertThat(spec.dir()).isNull();
    assertThat(spec.redirect()).isEqualTo(Std.NONE);
    assertThat(spec.tee()).isEqualTo(Std.NONE);
  }

  @Test
  void configuredVariablesAndPrefixTemplates() {
    LaunchConfig config =
        config(2)
            .putEnvironment("EXTRA", "x")
            .putEnvironment("RANK", "overridden by the contract")
            .logLinePrefixTemplate("${role_name}${local_rank}|${rank}:")
            .build();
    LocalWorkers.Spec first =
        WorkerEnvironment.specs(config, attempt(AgentProtocol.V2), Map.of()).get(0);
    assertThat(first.environment()).containsEntry("EXTRA", "x").containsEntry("RANK", "2");
    assertThat(first.prefix()).isEqualTo("trainer0|2:");
  }
}
