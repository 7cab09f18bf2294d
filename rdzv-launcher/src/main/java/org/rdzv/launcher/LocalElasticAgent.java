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
      return result;
    } catch (RendezvousGracefulExitException e) {
      // PyTorch 2.x: a spare node (beyond max_nodes) found the job closed; not a failure.
      LOG.log(Level.INFO, "Rendezvous gracefully exited: {0}", String.valueOf(e.getMessage()));
      success = true;
      return new RunResult(WorkerState.SUCCEEDED, Map.of(), restartCount(), rounds);
    } catch (RuntimeException e) {
      if (stopping) {
        return new RunResult(WorkerState.STOPPED, Map.of(), restartCount(), rounds);
      }
      throw e;
    } finally {
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
          restartWorkers();
          continue;
        }
        if (System.nanoTime() - nextPoll >= 0) {
          nextPoll = System.nanoTime() + intervalNanos;
          int waiting = handler.numNodesWaiting();
          if (waiting > 0) {
            LOG.log(
                Level.INFO,
                "[{0}] Detected {1} new nodes from group_rank={2}; will restart worker group",
                role(),
                String.valueOf(waiting),
                String.valueOf(groupRank));
            listener.accept(new AgentEvent.WorkersExited(WorkerState.HEALTHY, Map.of()));
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
          listener.accept(new AgentEvent.WorkersExited(WorkerState.SUCCEEDED, Map.of()));
          exitBarrier();
          return new RunResult(WorkerState.SUCCEEDED, Map.of(), restartCount(), rounds);
        }
        case FAILED -> {
          Map<Integer, ProcessFailure> failures = current.failures(Instant.now());
          listener.accept(new AgentEvent.WorkersExited(WorkerState.FAILED, failures));
          if (remainingRestarts > 0) {
            LOG.log(
                Level.INFO,
                "[{0}] Worker group FAILED. {1}/{2} attempts left; will restart worker group",
                role(),
                String.valueOf(remainingRestarts),
                String.valueOf(config.maxRestarts()));
            remainingRestarts--;
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
    RendezvousInfo info = handler.nextRendezvous();
    int round = rounds++;
    backendRound = info.round();
    store = info.store();
    groupRank = info.rank();
    groupWorldSize = info.worldSize();

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
    Ranks ranks = assignment.ranks();
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
