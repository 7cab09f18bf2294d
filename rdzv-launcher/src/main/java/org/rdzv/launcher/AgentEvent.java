package org.rdzv.launcher;

import java.util.Map;

/**
 * What an {@link ElasticAgent} reports as it runs, for logs, metrics and tests. Delivered on the
 * agent's own thread (or, for {@link WorkersExited}, the thread that saw the exit); a listener must
 * return quickly and must not throw.
 */
public sealed interface AgentEvent {

  /**
   * A rendezvous round completed and ranks are assigned.
   *
   * @param round how many rounds this agent joined before, 0 for the first
   * @param groupRank this agent's rank among the agents
   * @param groupWorldSize the number of agents
   * @param worldSize the number of workers over all agents
   * @param masterAddr {@code MASTER_ADDR} given to the workers
   * @param masterPort {@code MASTER_PORT}
   * @param useAgentStore {@code TORCHELASTIC_USE_AGENT_STORE}
   */
  record RendezvousCompleted(
      int round,
      int groupRank,
      int groupWorldSize,
      int worldSize,
      String masterAddr,
      int masterPort,
      boolean useAgentStore)
      implements AgentEvent {}

  /**
   * The workers of an attempt started.
   *
   * @param restartCount {@code TORCHELASTIC_RESTART_COUNT}
   * @param pids process ids by local rank
   * @param globalRanks {@code RANK} by local rank
   */
  record WorkersStarted(
      int restartCount, Map<Integer, Long> pids, Map<Integer, Integer> globalRanks)
      implements AgentEvent {}

  /**
   * The group ended or is being restarted.
   *
   * @param state {@link WorkerState#SUCCEEDED}, {@link WorkerState#FAILED} or, when the agent
   *     restarts the group because nodes wait to join, {@link WorkerState#HEALTHY}
   * @param failures failed workers by global rank
   */
  record WorkersExited(WorkerState state, Map<Integer, ProcessFailure> failures)
      implements AgentEvent {}
}
