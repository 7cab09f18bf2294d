package org.rdzv.launcher;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * The Micrometer meters of one agent run, tagged {@code role} and {@code run_id} (names in
 * docs/observability.md): rounds, rendezvous time, restarts by reason, worker exits by code, and
 * gauges of the current attempt. Registered when the run starts and removed when it ends, so a
 * process that runs many jobs keeps none of the finished ones. Thread-safe.
 */
final class AgentMetrics {
  static final String ROUNDS = "rdzv.agent.rounds";
  static final String RENDEZVOUS = "rdzv.agent.rendezvous";
  static final String RESTARTS = "rdzv.agent.restarts";
  static final String REMAINING_RESTARTS = "rdzv.agent.remaining.restarts";
  static final String WORKERS = "rdzv.agent.workers";
  static final String GROUP_RANK = "rdzv.agent.group.rank";
  static final String GROUP_WORLD_SIZE = "rdzv.agent.group.world.size";
  static final String WORLD_SIZE = "rdzv.agent.world.size";
  static final String NODES_WAITING = "rdzv.agent.nodes.waiting";
  static final String WORKER_EXITS = "rdzv.agent.worker.exits";

  /** Why the worker group was restarted. */
  enum Reason {
    /** A worker failed: counts against {@code --max-restarts}. */
    FAILURE("failure"),
    /** Nodes wait to join: a membership change, free. */
    NODES_WAITING("nodes_waiting"),
    /** Participants of the round stopped heartbeating or left: free. */
    PARTICIPANTS_LOST("participants_lost");

    final String tag;

    Reason(String tag) {
      this.tag = tag;
    }
  }

  private static final Duration[] RENDEZVOUS_BUCKETS = {
    Duration.ofMillis(100),
    Duration.ofMillis(500),
    Duration.ofSeconds(1),
    Duration.ofSeconds(2),
    Duration.ofSeconds(5),
    Duration.ofSeconds(10),
    Duration.ofSeconds(30),
    Duration.ofSeconds(60),
    Duration.ofSeconds(120),
    Duration.ofSeconds(300),
    Duration.ofSeconds(600),
  };

  private final MeterRegistry registry;
  private final Tags tags;
  private final List<Meter> meters = new CopyOnWriteArrayList<>();
  private final Counter rounds;
  private final Timer rendezvous;
  private final Map<Reason, Counter> restarts = new ConcurrentHashMap<>();
  private final Map<Integer, Counter> exits = new ConcurrentHashMap<>();
  private final AtomicLong remainingRestarts = new AtomicLong();
  private final AtomicLong groupRank = new AtomicLong(-1);
  private final AtomicLong groupWorldSize = new AtomicLong();
  private final AtomicLong worldSize = new AtomicLong();
  private final AtomicLong nodesWaiting = new AtomicLong();

  /**
   * @param workers how many local workers run now (read at each scrape)
   */
  AgentMetrics(MeterRegistry registry, String role, String runId, Supplier<Integer> workers) {
    this.registry = registry;
    this.tags = Tags.of("role", role, "run_id", runId);
    rounds =
        add(
            Counter.builder(ROUNDS)
                .description("Rendezvous rounds this agent completed (restarts and joins)")
                .tags(tags)
                .register(registry));
    rendezvous =
        add(
            Timer.builder(RENDEZVOUS)
                .description(
                    "Time from asking for the next round to ranks assigned (PyTorch's RENDEZVOUS"
                        + " and ASSIGN_WORKER_RANKS)")
                .tags(tags)
                .serviceLevelObjectives(RENDEZVOUS_BUCKETS)
                .register(registry));
    for (Reason r : Reason.values()) {
      restarts.put(
          r,
          add(
              Counter.builder(RESTARTS)
                  .description(
                      "Worker group restarts, by reason (only failures count against"
                          + " --max-restarts)")
                  .tags(tags.and("reason", r.tag))
                  .register(registry)));
    }
    gauge(REMAINING_RESTARTS, "Restarts after failures still allowed", remainingRestarts);
    gauge(GROUP_RANK, "This agent's rank among the agents (-1 before the first round)", groupRank);
    gauge(GROUP_WORLD_SIZE, "Agents in the current round", groupWorldSize);
    gauge(WORLD_SIZE, "Workers of all agents in the current round", worldSize);
    gauge(NODES_WAITING, "Nodes waiting to join, as the agent last asked", nodesWaiting);
    add(
        Gauge.builder(WORKERS, workers, w -> w.get())
            .description("Local worker processes running now")
            .tags(tags)
            .strongReference(true)
            .register(registry));
  }

  private <M extends Meter> M add(M meter) {
    meters.add(meter);
    return meter;
  }

  private void gauge(String name, String help, AtomicLong value) {
    add(
        Gauge.builder(name, value, AtomicLong::doubleValue)
            .description(help)
            .tags(tags)
            .strongReference(true)
            .register(registry));
  }

  void remainingRestarts(int n) {
    remainingRestarts.set(n);
  }

  /** A round completed after {@code nanos} (rendezvous and rank assignment). */
  void round(long nanos, int rank, int agents, int workers) {
    rounds.increment();
    rendezvous.record(Duration.ofNanos(nanos));
    groupRank.set(rank);
    groupWorldSize.set(agents);
    worldSize.set(workers);
  }

  void restart(Reason reason) {
    restarts.get(reason).increment();
  }

  void nodesWaiting(int n) {
    nodesWaiting.set(n);
  }

  /** A worker ended by itself with PyTorch's {@code exitCode} (negative: killed by a signal). */
  void workerExited(int exitCode) {
    exits
        .computeIfAbsent(
            exitCode,
            code ->
                add(
                    Counter.builder(WORKER_EXITS)
                        .description(
                            "Workers that ended by themselves, by exit code (negative: the"
                                + " signal that killed them)")
                        .tags(tags.and("exit_code", Integer.toString(code)))
                        .register(registry)))
        .increment();
  }

  /** Removes every meter of this run from the registry. */
  void close() {
    for (Meter m : meters) {
      registry.remove(m);
    }
  }
}
