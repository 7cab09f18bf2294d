package org.rdzv.dynamic;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import org.rdzv.api.RendezvousClosedException;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousGracefulExitException;
import org.rdzv.api.RendezvousTimeoutException;

/**
 * The Micrometer meters of one rendezvous on one registry, tagged {@code run_id} and {@code
 * backend} (names in docs/observability.md). Handlers of the same rendezvous in one process share
 * them; the last one to close removes them from the registry, so that a process running many jobs
 * does not keep the meters of finished ones. Gauges show the state as this process last synced it:
 * a scrape never touches the backend.
 */
final class RendezvousMetrics implements AutoCloseable {
  static final String JOIN = "rdzv.rendezvous.join";
  static final String ROUNDS = "rdzv.rendezvous.rounds";
  static final String ROUND = "rdzv.rendezvous.round";
  static final String PARTICIPANTS = "rdzv.rendezvous.participants";
  static final String WAITING = "rdzv.rendezvous.waiting.nodes";
  static final String REDUNDANT = "rdzv.rendezvous.redundant.nodes";
  static final String HEARTBEATS = "rdzv.rendezvous.heartbeats";
  static final String LOST = "rdzv.rendezvous.lost.participants";
  static final String CONFLICTS = "rdzv.rendezvous.state.conflicts";

  /** Join latencies worth telling apart, from a local round to the default join timeout. */
  private static final Duration[] JOIN_BUCKETS = {
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

  private static final ReentrantLock SHARED_LOCK = new ReentrantLock();
  private static final Map<Key, Shared> SHARED = new HashMap<>();

  private record Key(MeterRegistry registry, String runId, String backend) {
    // Registries compare by identity: two equal-looking registries are still two destinations.
    @Override
    public boolean equals(Object o) {
      return o instanceof Key k
          && k.registry == registry
          && k.runId.equals(runId)
          && k.backend.equals(backend);
    }

    @Override
    public int hashCode() {
      return (System.identityHashCode(registry) * 31 + runId.hashCode()) * 31 + backend.hashCode();
    }
  }

  /** The meters of one rendezvous on one registry, and how many handlers use them. */
  private static final class Shared {
    final MeterRegistry registry;
    final Tags tags;
    final List<Meter> meters = new CopyOnWriteArrayList<>();
    final Map<String, Timer> joins = new ConcurrentHashMap<>();
    final AtomicLong round = new AtomicLong();
    final AtomicLong participants = new AtomicLong();
    final AtomicLong waiting = new AtomicLong();
    final AtomicLong redundant = new AtomicLong();
    final Counter rounds;
    final Counter heartbeatsOk;
    final Counter heartbeatsFailed;
    final Counter lost;
    final Counter conflicts;
    int users;

    Shared(MeterRegistry registry, Tags tags) {
      this.registry = registry;
      this.tags = tags;
      gauge(ROUND, "The round of the rendezvous in the state this process last synced", round);
      gauge(
          PARTICIPANTS, "Participants of that round (joined so far while it forms)", participants);
      gauge(WAITING, "Nodes in the wait list for the next round", waiting);
      gauge(REDUNDANT, "Nodes beyond max_nodes in the redundancy list (PyTorch 2.x)", redundant);
      join("joined");
      rounds = counter(ROUNDS, "Rounds this process's nodes joined", Tags.empty());
      heartbeatsOk = counter(HEARTBEATS, "Keep-alive heartbeats sent", Tags.of("outcome", "ok"));
      heartbeatsFailed =
          counter(HEARTBEATS, "Keep-alive heartbeats sent", Tags.of("outcome", "failed"));
      lost =
          counter(
              LOST,
              "Participants of completed rounds that stopped heartbeating or left",
              Tags.empty());
      conflicts =
          counter(
              CONFLICTS,
              "State writes refused because another node wrote first (compare-and-set conflicts)",
              Tags.empty());
    }

    private void gauge(String name, String help, AtomicLong value) {
      meters.add(
          Gauge.builder(name, value, AtomicLong::doubleValue)
              .description(help)
              .tags(tags)
              .strongReference(true)
              .register(registry));
    }

    private Counter counter(String name, String help, Tags extra) {
      Counter c = Counter.builder(name).description(help).tags(tags.and(extra)).register(registry);
      meters.add(c);
      return c;
    }

    Timer join(String outcome) {
      return joins.computeIfAbsent(
          outcome,
          o -> {
            Timer t =
                Timer.builder(JOIN)
                    .description("Time to join a round (next_rendezvous), by outcome")
                    .tags(tags.and("outcome", o))
                    .serviceLevelObjectives(JOIN_BUCKETS)
                    .register(registry);
            meters.add(t);
            return t;
          });
    }
  }

  private final Key key;
  private final Shared shared;
  private boolean closed;

  private RendezvousMetrics(Key key, Shared shared) {
    this.key = key;
    this.shared = shared;
  }

  /** The meters of rendezvous {@code runId} over {@code backend} on {@code registry}. */
  static RendezvousMetrics open(MeterRegistry registry, String runId, String backend) {
    Key key = new Key(registry, runId, backend);
    SHARED_LOCK.lock();
    try {
      Shared shared =
          SHARED.computeIfAbsent(
              key, k -> new Shared(registry, Tags.of("run_id", runId, "backend", backend)));
      shared.users++;
      return new RendezvousMetrics(key, shared);
    } finally {
      SHARED_LOCK.unlock();
    }
  }

  /** A join that ended with this node in a round after {@code nanos}. */
  void joined(long nanos) {
    shared.join("joined").record(Duration.ofNanos(nanos));
    shared.rounds.increment();
  }

  /** A join that failed with {@code error} after {@code nanos}. */
  void joinFailed(long nanos, Throwable error) {
    String outcome =
        switch (error) {
          case RendezvousTimeoutException t -> "timeout";
          case RendezvousClosedException c -> "closed";
          case RendezvousGracefulExitException g -> "graceful_exit";
          case RendezvousConnectionException c -> "connection";
          default -> "error";
        };
    shared.join(outcome).record(Duration.ofNanos(nanos));
  }

  void heartbeat(boolean ok) {
    (ok ? shared.heartbeatsOk : shared.heartbeatsFailed).increment();
  }

  void lost(int count) {
    shared.lost.increment(count);
  }

  void conflict() {
    shared.conflicts.increment();
  }

  /** Takes the gauges' values from a state just synced. */
  void observe(MutableState s) {
    shared.round.set(s.round);
    shared.participants.set(s.participants.size());
    shared.waiting.set(s.waitList.size());
    shared.redundant.set(s.redundancyList.size());
  }

  /** Releases this handler's use; the last user removes the meters. Idempotent. */
  @Override
  public void close() {
    SHARED_LOCK.lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      if (--shared.users > 0) {
        return;
      }
      SHARED.remove(key);
      for (Meter m : shared.meters) {
        shared.registry.remove(m);
      }
    } finally {
      SHARED_LOCK.unlock();
    }
  }
}
