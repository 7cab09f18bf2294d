package org.rdzv.launcher;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The worker contract of PyTorch's {@code LocalElasticAgent}: the command, environment, log
 * directory and line prefix of each local worker of one attempt. Pure: it reads no process
 * environment and starts nothing, so the contract is tested without processes.
 *
 * <p>Workers inherit the agent's whole environment; what is computed here goes on top of it. The
 * variables are those of the PyTorch line whose agent protocol the round uses ({@link Attempt#
 * protocol()}): 1.13 sets {@code NCCL_ASYNC_ERROR_HANDLING}, 2.x {@code
 * TORCH_NCCL_ASYNC_ERROR_HANDLING} (the old name is deprecated there and makes NCCL warn).
 */
final class WorkerEnvironment {

  /**
   * What one attempt of the local worker group is.
   *
   * @param groupRank this agent's rank
   * @param groupWorldSize the number of agents
   * @param ranks this agent's workers' ranks
   * @param store where the workers' store is
   * @param restartCount {@code TORCHELASTIC_RESTART_COUNT}
   * @param runId {@code TORCHELASTIC_RUN_ID}
   * @param protocol the round's agent protocol, which picks the PyTorch line of the contract
   * @param attemptDir {@code <run log dir>/attempt_<restart count>}, or {@code null} when logs go
   *     nowhere ({@code --log-dir /dev/null})
   */
  record Attempt(
      int groupRank,
      int groupWorldSize,
      Ranks ranks,
      WorkerStore store,
      int restartCount,
      String runId,
      AgentProtocol protocol,
      Path attemptDir) {}

  private WorkerEnvironment() {}

  /**
   * The start specification of every local worker, by local rank.
   *
   * @param inherited the agent's own environment (workers inherit it; it also decides the NCCL and
   *     OpenMP defaults)
   */
  static List<LocalWorkers.Spec> specs(
      LaunchConfig config, Attempt attempt, Map<String, String> inherited) {
    List<LocalWorkers.Spec> specs = new ArrayList<>();
    int n = config.nprocPerNode();
    for (int local = 0; local < n; local++) {
      int rank = attempt.ranks().base() + local;
      Path dir =
          attempt.attemptDir() == null
              ? null
              : attempt.attemptDir().resolve(Integer.toString(local));
      List<String> command = new ArrayList<>();
      for (String arg : config.command()) {
        command.add(arg.replace("${local_rank}", Integer.toString(local)));
      }
      String prefix =
          config
              .logLinePrefixTemplate()
              .replace("${rank}", Integer.toString(rank))
              .replace("${local_rank}", Integer.toString(local))
              .replace("${role_name}", config.role());
      specs.add(
          new LocalWorkers.Spec(
              local,
              rank,
              command,
              environment(
                  config,
                  attempt,
                  local,
                  dir == null ? "" : dir.resolve("error.json").toString(),
                  inherited),
              dir,
              // Without files, everything goes to the console as it is (PyTorch 2.x).
              dir == null ? Std.NONE : config.redirects().get(local),
              dir == null ? Std.NONE : config.tee().get(local),
              prefix,
              config.localRanksFilter().isEmpty() || config.localRanksFilter().contains(local)));
    }
    return specs;
  }

  /** The variables the agent sets for local worker {@code local}, over the inherited ones. */
  static Map<String, String> environment(
      LaunchConfig config,
      Attempt attempt,
      int local,
      String errorFile,
      Map<String, String> inherited) {
    int n = config.nprocPerNode();
    Ranks ranks = attempt.ranks();
    Map<String, String> env = new LinkedHashMap<>(config.environment());
    env.put("LOCAL_RANK", Integer.toString(local));
    env.put("RANK", Integer.toString(ranks.base() + local));
    env.put("GROUP_RANK", Integer.toString(attempt.groupRank()));
    env.put("ROLE_RANK", Integer.toString(ranks.roleBase() + local));
    env.put("ROLE_NAME", config.role());
    env.put("LOCAL_WORLD_SIZE", Integer.toString(n));
    env.put("WORLD_SIZE", Integer.toString(ranks.worldSize()));
    env.put("GROUP_WORLD_SIZE", Integer.toString(attempt.groupWorldSize()));
    env.put("ROLE_WORLD_SIZE", Integer.toString(ranks.roleWorldSize()));
    env.put("MASTER_ADDR", attempt.store().addr());
    env.put("MASTER_PORT", Integer.toString(attempt.store().port()));
    env.put("TORCHELASTIC_RESTART_COUNT", Integer.toString(attempt.restartCount()));
    env.put("TORCHELASTIC_MAX_RESTARTS", Integer.toString(config.maxRestarts()));
    env.put("TORCHELASTIC_RUN_ID", attempt.runId());
    // Python's str(bool).
    env.put("TORCHELASTIC_USE_AGENT_STORE", attempt.store().useAgentStore() ? "True" : "False");
    if (attempt.protocol() == AgentProtocol.V1_13) {
      env.put(
          "NCCL_ASYNC_ERROR_HANDLING", inherited.getOrDefault("NCCL_ASYNC_ERROR_HANDLING", "1"));
    }
    env.put(
        "TORCH_NCCL_ASYNC_ERROR_HANDLING",
        inherited.getOrDefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1"));
    if (!inherited.containsKey("OMP_NUM_THREADS")
        && !config.environment().containsKey("OMP_NUM_THREADS")
        && n > 1) {
      // torchrun's rule: several workers per node must not each use every core.
      env.put("OMP_NUM_THREADS", "1");
    }
    env.put("TORCHELASTIC_ERROR_FILE", errorFile);
    return env;
  }
}
