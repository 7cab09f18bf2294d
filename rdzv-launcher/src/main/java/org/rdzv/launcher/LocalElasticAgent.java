package org.rdzv.launcher;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import org.rdzv.api.RendezvousGracefulExitException;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.Store;
import org.rdzv.api.events.Events;
import org.rdzv.api.events.RdzvEvent;

/**
 * PyTorch's {@code LocalElasticAgent}: the state machine of one node's agent (rendezvous, start,
 * watch, restart, exit barrier). It shares a job with torchrun 1.13 and 2.x agents: the store
 * protocol of a round is the one its peers speak ({@link AgentStoreProtocol}), the workers get that
 * PyTorch line's contract ({@link WorkerEnvironment}) and their store is chosen by {@link
 * WorkerStoreChoice}.
 *
 * <p>Unlike PyTorch it does not poll its workers: each worker's exit wakes the agent at once. On a
 * handler that reports lost participants ({@link RendezvousHandler#addListener}), a participant of
 * the current round that stops heartbeating makes the agent re-rendezvous (without using a
 * restart), where PyTorch would carry on. The monitor interval only paces the question "do nodes
 * wait to join?".
 */
final class LocalElasticAgent implements ElasticAgent {
  private static final System.Logger LOG = System.getLogger(LocalElasticAgent.class.getName());

  private final LaunchConfig config;
  private final RendezvousHandler handler;
  private final Consumer<AgentEvent> listener;
  private final WorkerStoreHost storeHost;
  private final LinkedBlockingQueue<Integer> exits = new LinkedBlockingQueue<>();
  private final ReentrantLock lock = new ReentrantLock();
  private final AtomicBoolean ran = new AtomicBoolean();

  /** The backend round in which participants were lost (-1: none), set by the handler's thread. */
  private final AtomicLong lostRound = new AtomicLong(-1);

  private static final int WAKE = Integer.MIN_VALUE;

  /** The {@code raw_error} of the agent's FAILED event after {@link #stop()}. */
  private static final String STOPPED =
      "SignalException: the agent was stopped (a termination signal or stop()); workers were"
          + " shut down";

  private volatile boolean stopping;
  private volatile Thread runThread;

  // Guarded by lock: what runs now.
  private LocalWorkers workers;
  private int generation;
  private WorkerStoreHost.Server workerStore;

  // Touched by the run thread only.
  private int remainingRestarts;
  private int rounds;
  private Store store;
  private int groupRank;
  private int groupWorldSize;
  private long backendRound = -1;
  private AgentProtocol protocol = AgentProtocol.V1_13;
  private RunLogDirectory logDir;
  private Ranks ranks;
  private boolean joined;
  private long startNanos;
  private final AgentEvents events;
  private AgentMetrics metrics;

  LocalElasticAgent(
      LaunchConfig config,
      RendezvousHandler handler,
      Consumer<AgentEvent> listener,
      WorkerStoreHost storeHost) {
    this.config = Objects.requireNonNull(config, "config");
    this.handler = Objects.requireNonNull(handler, "handler");
    this.listener = listener == null ? e -> {} : listener;
    this.storeHost = storeHost;
    this.remainingRestarts = config.maxRestarts();
    this.events = new AgentEvents(config);
  }

  LocalElasticAgent(LaunchConfig config, RendezvousHandler handler, Consumer<AgentEvent> listener) {
    this(config, handler, listener, TcpWorkerStoreHost.INSTANCE);
  }

  private String role() {
    return config.role();
  }

  @Override
  public RunResult run() {
    if (!ran.compareAndSet(false, true)) {
      throw new IllegalStateException("an ElasticAgent runs once; run() was already called");
    }
    runThread = Thread.currentThread();
    startNanos = System.nanoTime();
    metrics =
        new AgentMetrics(
            config.meterRegistry(), role(), handler.runId(), () -> workerPids().size());
    metrics.remainingRestarts(remainingRestarts);
    boolean success = false;
    RendezvousHandler.Listener lossListener =
        (round, lost) -> {
          lostRound.set(round);
          exits.offer(WAKE);
        };
    handler.addListener(lossListener);
    try {
      RunResult result = invokeRun();
      success = result.isSuccess();
      // As launch_agent: the agent's run succeeded, whatever its workers did. A stop (a signal)
      // is a failure of the run, as PyTorch's SignalException is.
      if (result.state() == WorkerState.STOPPED) {
        events.agent("FAILED", snapshot(), STOPPED, null);
      } else {
        events.agent("SUCCEEDED", snapshot(), null, null);
      }
      return result;
    } catch (RendezvousGracefulExitException e) {
      // PyTorch 2.x: a spare node (beyond max_nodes) found the job closed; not a failure.
      LOG.log(Level.INFO, "Rendezvous gracefully exited: {0}", String.valueOf(e.getMessage()));
      success = true;
      events.agent("SUCCEEDED", snapshot(), null, null);
      return new RunResult(WorkerState.SUCCEEDED, Map.of(), restartCount(), rounds);
    } catch (RuntimeException e) {
      if (stopping) {
        events.agent("FAILED", snapshot(), STOPPED, null);
        return new RunResult(WorkerState.STOPPED, Map.of(), restartCount(), rounds);
      }
      events.agent("FAILED", snapshot(), RdzvEvent.trace(e), null);
      throw e;
    } finally {
      metrics.close();
      handler.removeListener(lossListener);
      runThread = null;
      Thread.interrupted(); // a stop() may have interrupted us; do not leak it to the caller
      stopWorkers();
      closeWorkerStore();
      if (logDir != null && success) {
        logDir.cleanUpAfterSuccess();
      }
    }
  }

  private RunResult invokeRun() {
    LOG.log(
        Level.INFO, "[{0}] starting workers for entrypoint: {1}", role(), config.entrypointName());
    if ("1".equals(System.getenv("TORCHELASTIC_ENABLE_FILE_TIMER"))) {
      LOG.log(
          Level.WARNING,
          "TORCHELASTIC_ENABLE_FILE_TIMER=1: rdzv run has no file-timer watchdog (torchrun 2.x's"
              + " FileTimerServer); workers get no TORCHELASTIC_TIMER_FILE from it");
    }
    logDir = RunLogDirectory.create(config.logDir(), handler.runId());
    initializeWorkers();
    long intervalNanos = config.monitorInterval().toNanos();
    long nextPoll = System.nanoTime() + intervalNanos;
    while (true) {
      Integer exited;
      try {
        exited = exits.poll(Math.max(0, nextPoll - System.nanoTime()), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        exited = null;
        if (!stopping) {
          Thread.currentThread().interrupt();
          throw new IllegalStateException("the agent was interrupted", e);
        }
      }
      if (stopping) {
        return new RunResult(WorkerState.STOPPED, Map.of(), restartCount(), rounds);
      }
      if (exited == null || exited != currentGeneration()) {
        long lost = lostRound.getAndSet(-1);
        if (lost >= 0 && lost == backendRound && !handler.isClosed()) {
          // PyTorch leaves survivors running when a node of a completed round dies (issue
          // #111646); their next collective would hang or fail. We re-rendezvous at once.
          LOG.log(
              Level.INFO,
              "[{0}] Participants of round {1} are gone; will restart worker group",
              role(),
              String.valueOf(lost));
          listener.accept(new AgentEvent.WorkersExited(WorkerState.HEALTHY, Map.of()));
          metrics.restart(AgentMetrics.Reason.PARTICIPANTS_LOST);
          restartWorkers();
          continue;
        }
        if (System.nanoTime() - nextPoll >= 0) {
          nextPoll = System.nanoTime() + intervalNanos;
          int waiting = handler.numNodesWaiting();
          metrics.nodesWaiting(waiting);
          if (waiting > 0) {
            LOG.log(
                Level.INFO,
                "[{0}] Detected {1} new nodes from group_rank={2}; will restart worker group",
                role(),
                String.valueOf(waiting),
                String.valueOf(groupRank));
            listener.accept(new AgentEvent.WorkersExited(WorkerState.HEALTHY, Map.of()));
            metrics.restart(AgentMetrics.Reason.NODES_WAITING);
            restartWorkers();
          }
        }
        continue;
      }
      LocalWorkers current = currentWorkers();
      WorkerState state = current.state();
      switch (state) {
        case SUCCEEDED -> {
          current.awaitOutput(Duration.ofSeconds(2));
          LOG.log(
              Level.INFO,
              "[{0}] worker group successfully finished. Waiting {1} seconds for other agents to finish.",
              role(),
              String.valueOf(config.exitBarrierTimeout().toSeconds()));
          current.exitCodes().values().forEach(metrics::workerExited);
          listener.accept(new AgentEvent.WorkersExited(WorkerState.SUCCEEDED, Map.of()));
          recordWorkerEvents(current, Map.of());
          exitBarrier();
          return new RunResult(WorkerState.SUCCEEDED, Map.of(), restartCount(), rounds);
        }
        case FAILED -> {
          Map<Integer, ProcessFailure> failures = current.failures(Instant.now());
          current.exitCodes().values().forEach(metrics::workerExited);
          listener.accept(new AgentEvent.WorkersExited(WorkerState.FAILED, failures));
          // As torchrun: the others get their closing signal, then the first failure is named.
          stopWorkers();
          logFirstFailure(failures);
          recordWorkerEvents(current, failures);
          if (remainingRestarts > 0) {
            LOG.log(
                Level.INFO,
                "[{0}] Worker group FAILED. {1}/{2} attempts left; will restart worker group",
                role(),
                String.valueOf(remainingRestarts),
                String.valueOf(config.maxRestarts()));
            remainingRestarts--;
            metrics.remainingRestarts(remainingRestarts);
            metrics.restart(AgentMetrics.Reason.FAILURE);
            restartWorkers();
          } else {
            stopWorkers();
            if (protocol.barrierAfterFailure()) {
              exitBarrier();
            }
            return new RunResult(WorkerState.FAILED, failures, restartCount(), rounds);
          }
        }
        default -> {
          // some workers exited 0, others still run: keep watching
        }
      }
    }
  }

  @Override
  public void stop() {
    stopping = true;
    Thread t = runThread;
    if (t != null) {
      t.interrupt();
    }
    stopWorkers();
  }

  @Override
  public Map<Integer, Long> workerPids() {
    lock.lock();
    try {
      if (workers == null) {
        return Map.of();
      }
      Map<Integer, Long> alive = new LinkedHashMap<>();
      for (LocalWorkers.Worker w : workers.workers()) {
        if (w.process.isAlive()) {
          alive.put(w.spec.localRank(), w.process.pid());
        }
      }
      return alive;
    } finally {
      lock.unlock();
    }
  }

  private int restartCount() {
    return config.maxRestarts() - remainingRestarts;
  }

  private int currentGeneration() {
    lock.lock();
    try {
      return generation;
    } finally {
      lock.unlock();
    }
  }

  private LocalWorkers currentWorkers() {
    lock.lock();
    try {
      return workers;
    } finally {
      lock.unlock();
    }
  }

  private void restartWorkers() {
    LOG.log(Level.INFO, "[{0}] Stopping worker group", role());
    stopWorkers();
    closeWorkerStore();
    initializeWorkers();
  }

  /** Rendezvous, rank assignment and worker start: PyTorch's {@code _initialize_workers}. */
  private void initializeWorkers() {
    LOG.log(Level.INFO, "[{0}] Rendezvous''ing worker group", role());
    long rendezvousStart = System.nanoTime();
    RendezvousInfo info = handler.nextRendezvous();
    long assignStart = System.nanoTime();
    int round = rounds++;
    backendRound = info.round();
    store = info.store();
    groupRank = info.rank();
    groupWorldSize = info.worldSize();
    joined = true;
    events.agent("RENDEZVOUS", snapshot(), null, millis(assignStart - rendezvousStart));

    RoleInfo mine = new RoleInfo(role(), groupRank, config.nprocPerNode(), config.agentStore());
    AgentStoreProtocol.Assignment assignment;
    if ("1".equals(System.getenv("TORCH_ELASTIC_WORKER_IDENTICAL"))) {
      // PyTorch 2.x's fast path, which every agent of the job must take: no store traffic.
      assignment =
          new AgentStoreProtocol.Assignment(
              AgentProtocol.V2,
              Ranks.identical(groupRank, groupWorldSize, config.nprocPerNode()),
              false);
    } else {
      // A round of rdzv agents alone speaks the PyTorch line of its rendezvous: 2.x where the
      // handler gives bootstrap information (the 2.x state dialects, static), else 1.13.
      AgentProtocol preferred =
          info.bootstrapStoreInfo() != null ? AgentProtocol.V2 : AgentProtocol.V1_13;
      assignment =
          AgentStoreProtocol.assign(store, mine, groupWorldSize, preferred, store.timeout());
    }
    protocol = assignment.protocol();
    ranks = assignment.ranks();
    long assigned = System.nanoTime();
    events.agent("ASSIGN_WORKER_RANKS", snapshot(), null, millis(assigned - assignStart));
    metrics.round(assigned - rendezvousStart, groupRank, groupWorldSize, ranks.worldSize());
    WorkerStoreChoice choice =
        WorkerStoreChoice.choose(
            handler.backend(),
            config.rendezvous().endpoint(),
            config.rendezvous().localAddr(),
            info.bootstrapStoreInfo(),
            handler.useAgentStore(),
            assignment,
            groupRank,
            store,
            storeHost);
    if (choice.hosted() != null) {
      lock.lock();
      try {
        workerStore = choice.hosted();
      } finally {
        lock.unlock();
      }
    }
    WorkerStore master = choice.store();

    LOG.log(
        Level.INFO,
        "[{0}] Rendezvous complete for workers. Result:\n  restart_count={1}\n  master_addr={2}\n"
            + "  master_port={3}\n  group_rank={4}\n  group_world_size={5}\n  global_ranks={6}\n"
            + "  global_world_size={7}\n  use_agent_store={8}\n  agent_protocol={9}",
        role(),
        String.valueOf(restartCount()),
        master.addr(),
        String.valueOf(master.port()),
        String.valueOf(groupRank),
        String.valueOf(groupWorldSize),
        ranks.globalRanks(config.nprocPerNode()),
        String.valueOf(ranks.worldSize()),
        master.useAgentStore(),
        protocol.label());
    listener.accept(
        new AgentEvent.RendezvousCompleted(
            round,
            groupRank,
            groupWorldSize,
            ranks.worldSize(),
            master.addr(),
            master.port(),
            master.useAgentStore()));
    startWorkers(ranks, master);
  }

  private void startWorkers(Ranks ranks, WorkerStore master) {
    int restartCount = restartCount();
    WorkerEnvironment.Attempt attempt =
        new WorkerEnvironment.Attempt(
            groupRank,
            groupWorldSize,
            ranks,
            master,
            restartCount,
            handler.runId(),
            protocol,
            logDir.freshAttempt(restartCount));
    List<LocalWorkers.Spec> specs = WorkerEnvironment.specs(config, attempt, System.getenv());
    Map<Integer, Integer> globalRanks = new LinkedHashMap<>();
    for (LocalWorkers.Spec spec : specs) {
      globalRanks.put(spec.localRank(), spec.globalRank());
    }
    lock.lock();
    try {
      if (stopping) {
        return;
      }
      int gen = ++generation;
      exits.clear();
      workers = LocalWorkers.start(specs, config.out(), config.err(), local -> exits.offer(gen));
      LOG.log(
          Level.INFO,
          "[{0}] Started workers {1} (attempt {2})",
          role(),
          workers.pids(),
          String.valueOf(restartCount));
      listener.accept(new AgentEvent.WorkersStarted(restartCount, workers.pids(), globalRanks));
    } finally {
      lock.unlock();
    }
  }

  /** What the agent's events report now. */
  private AgentEvents.Snapshot snapshot() {
    return new AgentEvents.Snapshot(
        handler.runId(),
        handler.backend(),
        joined ? groupRank : null,
        joined ? groupWorldSize : null,
        (System.nanoTime() - startNanos) / 1_000_000_000L,
        restartCount());
  }

  private static double millis(long nanos) {
    return nanos / 1e6;
  }

  /**
   * PyTorch's worker events for an attempt that ended: each failed worker FAILED with its error
   * file, the others TERMINATED; or all SUCCEEDED. PyTorch records them for the last attempt only;
   * rdzv for every attempt, so that the log shows each failure that led to a restart.
   */
  private void recordWorkerEvents(LocalWorkers attempt, Map<Integer, ProcessFailure> failures) {
    if (!Events.enabled()) {
      return;
    }
    AgentEvents.Snapshot at = snapshot();
    for (LocalWorkers.Worker w : attempt.workers()) {
      ProcessFailure failure = failures.get(w.spec.globalRank());
      String state = failures.isEmpty() ? "SUCCEEDED" : failure != null ? "FAILED" : "TERMINATED";
      events.worker(
          state,
          at,
          new AgentEvents.WorkerInfo(
              w.spec.localRank(),
              w.spec.globalRank(),
              ranks.roleBase() + w.spec.localRank(),
              ranks.roleWorldSize(),
              w.process.pid()),
          failure == null ? null : AgentEvents.rawError(failure));
    }
  }

  /** torchrun's line naming the first failure of a group (its {@code PContext} logs it). */
  private void logFirstFailure(Map<Integer, ProcessFailure> failures) {
    ProcessFailure first = null;
    for (ProcessFailure f : failures.values()) {
      if (first == null || f.timestamp().isBefore(first.timestamp())) {
        first = f;
      }
    }
    if (first != null) {
      LOG.log(
          Level.ERROR,
          "failed (exitcode: {0}) local_rank: {1} (pid: {2}) of binary: {3}",
          String.valueOf(first.exitCode()),
          String.valueOf(first.localRank()),
          String.valueOf(first.pid()),
          config.command().get(0));
    }
  }

  private void stopWorkers() {
    LocalWorkers current;
    lock.lock();
    try {
      current = workers;
      generation++; // exits of these workers are no longer news
    } finally {
      lock.unlock();
    }
    if (current != null) {
      current.stop(config.stopTimeout());
    }
  }

  private void closeWorkerStore() {
    WorkerStoreHost.Server server;
    lock.lock();
    try {
      server = workerStore;
      workerStore = null;
    } finally {
      lock.unlock();
    }
    if (server != null) {
      server.close();
    }
  }

  /**
   * The exit barrier of the round's protocol: wait (up to the barrier timeout) until every agent's
   * workers have ended, so that an agent hosting a store leaves last. Failures are logged, not
   * raised, as in PyTorch.
   */
  private void exitBarrier() {
    long start = System.nanoTime();
    try {
      AgentStoreProtocol.exitBarrier(
          protocol, store, groupRank, groupWorldSize, config.exitBarrierTimeout());
      LOG.log(
          Level.DEBUG,
          "Done waiting for other agents. Elapsed: {0} ms",
          String.valueOf((System.nanoTime() - start) / 1_000_000));
    } catch (RuntimeException e) {
      if (stopping) {
        throw e;
      }
      LOG.log(
          Level.WARNING,
          "Error waiting on exit barrier. Elapsed: {0} ms: {1}",
          String.valueOf((System.nanoTime() - start) / 1_000_000),
          e.toString());
    }
  }
}
