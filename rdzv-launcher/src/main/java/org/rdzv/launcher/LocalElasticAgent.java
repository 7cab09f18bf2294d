package org.rdzv.launcher;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.UUID;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.rdzv.api.Endpoint;
import org.rdzv.api.RendezvousGracefulExitException;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.api.Store;

/**
 * PyTorch's {@code LocalElasticAgent} with its 1.13 store conventions (reference §9), so that it
 * can share a job with torchrun 1.13 agents: role infos under {@code torchelastic/role_info<r>},
 * {@code MASTER_ADDR}/{@code MASTER_PORT} written by agent 0, and the exit barrier under {@code
 * torchelastic/agent/terminal_state<r>}.
 *
 * <p>Unlike PyTorch it does not poll its workers: each worker's exit wakes the agent at once. On a
 * handler that reports lost participants ({@link RendezvousHandler#addListener}), a participant of
 * the current round that stops heartbeating makes the agent re-rendezvous (without using a
 * restart), where PyTorch would carry on. The monitor interval only paces the question "do nodes
 * wait to join?".
 */
final class LocalElasticAgent implements ElasticAgent {
  private static final System.Logger LOG = System.getLogger(LocalElasticAgent.class.getName());

  static final String ROLE_INFO_PREFIX = "torchelastic/role_info";
  static final String TERMINAL_STATE_PREFIX = "torchelastic/agent/terminal_state";

  /** Extra role-info field by which rdzv agents tell each other they can use an agent store. */
  static final String AGENT_STORE_FIELD = "agent_store";

  private static final Duration SHARE_TIMEOUT = Duration.ofSeconds(300);

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
  private Path runLogDir;
  private boolean temporaryLogDir;

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
      if (temporaryLogDir && success) {
        deleteTree(runLogDir.getParent());
      }
    }
  }

  private RunResult invokeRun() {
    LOG.log(
        Level.INFO, "[{0}] starting workers for entrypoint: {1}", role(), config.entrypointName());
    prepareLogDir();
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
            exitBarrier();
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

    List<RoleInfo> infos = shareAndGather();
    Ranks ranks = Ranks.assign(infos, groupRank);
    Master master = master(info, infos);

    LOG.log(
        Level.INFO,
        "[{0}] Rendezvous complete for workers. Result:\n  restart_count={1}\n  master_addr={2}\n"
            + "  master_port={3}\n  group_rank={4}\n  group_world_size={5}\n  global_ranks={6}\n"
            + "  global_world_size={7}\n  use_agent_store={8}",
        role(),
        String.valueOf(restartCount()),
        master.addr,
        String.valueOf(master.port),
        String.valueOf(groupRank),
        String.valueOf(groupWorldSize),
        ranks.globalRanks(config.nprocPerNode()),
        String.valueOf(ranks.worldSize),
        master.useAgentStore);
    listener.accept(
        new AgentEvent.RendezvousCompleted(
            round,
            groupRank,
            groupWorldSize,
            ranks.worldSize,
            master.addr,
            master.port,
            master.useAgentStore));
    startWorkers(ranks, master);
  }

  /**
   * Writes this agent's role info and reads everybody's: PyTorch 1.13's {@code _share_and_gather}.
   */
  private List<RoleInfo> shareAndGather() {
    RoleInfo mine = new RoleInfo(role(), groupRank, config.nprocPerNode(), config.agentStore());
    List<byte[]> values =
        synchronize(
            store, mine.encode(), groupRank, groupWorldSize, ROLE_INFO_PREFIX, SHARE_TIMEOUT);
    List<RoleInfo> infos = new ArrayList<>(values.size());
    for (int i = 0; i < values.size(); i++) {
      infos.add(RoleInfo.decode(values.get(i), i));
    }
    return infos;
  }

  /**
   * PyTorch's {@code store_util.synchronize}: set {@code prefix<rank>}, read every {@code
   * prefix<i>}, set {@code prefix<rank>.FIN}; rank 0 also waits for every {@code .FIN}, because it
   * may host the store and must leave last.
   */
  static List<byte[]> synchronize(
      Store store, byte[] data, int rank, int worldSize, String prefix, Duration timeout) {
    store.set(prefix + rank, data);
    List<byte[]> all = new ArrayList<>(worldSize);
    for (int i = 0; i < worldSize; i++) {
      store.await(List.of(prefix + i), timeout);
      all.add(store.get(prefix + i));
    }
    store.set(prefix + rank + ".FIN", "FIN".getBytes(StandardCharsets.US_ASCII));
    if (rank == 0) {
      for (int i = 0; i < worldSize; i++) {
        store.await(List.of(prefix + i + ".FIN"), timeout);
        store.get(prefix + i + ".FIN");
      }
    }
    return all;
  }

  private record Master(String addr, int port, boolean useAgentStore) {}

  /**
   * Where the workers' store is, and whether they are its clients ({@code
   * TORCHELASTIC_USE_AGENT_STORE}):
   *
   * <ul>
   *   <li>{@code static}: the rendezvous endpoint, whose store agent 0 hosts (PyTorch 1.13);
   *   <li>a handler that gives bootstrap information (PyTorch 2.x): that, and the handler's {@code
   *       useAgentStore()};
   *   <li>otherwise agent 0 publishes {@code MASTER_ADDR}/{@code MASTER_PORT}. If every agent of
   *       the round is an rdzv agent willing to host, agent 0 serves a fresh store for this round
   *       and workers are its clients; else (a torchrun agent takes part) PyTorch 1.13's rule
   *       applies: a free port, on which worker rank 0 hosts the store.
   * </ul>
   */
  private Master master(RendezvousInfo info, List<RoleInfo> infos) {
    if ("static".equals(handler.backend())) {
      Endpoint endpoint = Endpoint.parse(config.rendezvous().endpoint(), 0);
      if (groupRank == 0) {
        publishMaster(endpoint.host(), endpoint.port());
      }
      return readMaster(true);
    }
    RendezvousStoreInfo bootstrap = info.bootstrapStoreInfo();
    if (bootstrap != null) {
      return new Master(bootstrap.masterAddr(), bootstrap.masterPort(), handler.useAgentStore());
    }
    boolean agentStore = infos.stream().allMatch(RoleInfo::agentStore);
    if (groupRank == 0) {
      String addr =
          config.rendezvous().localAddr() != null
              ? config.rendezvous().localAddr()
              : RendezvousStoreInfo.fqdn();
      int port;
      if (agentStore) {
        WorkerStoreHost.Server server = storeHost.start("");
        lock.lock();
        try {
          workerStore = server;
        } finally {
          lock.unlock();
        }
        port = server.port();
      } else {
        port = RendezvousStoreInfo.freePort();
      }
      publishMaster(addr, port);
    }
    return readMaster(agentStore);
  }

  private void publishMaster(String addr, int port) {
    store.set(RendezvousStoreInfo.MASTER_ADDR_KEY, addr.getBytes(StandardCharsets.UTF_8));
    store.set(
        RendezvousStoreInfo.MASTER_PORT_KEY,
        Integer.toString(port).getBytes(StandardCharsets.UTF_8));
  }

  private Master readMaster(boolean useAgentStore) {
    String addr =
        new String(store.get(RendezvousStoreInfo.MASTER_ADDR_KEY), StandardCharsets.UTF_8);
    String port =
        new String(store.get(RendezvousStoreInfo.MASTER_PORT_KEY), StandardCharsets.UTF_8);
    try {
      return new Master(addr, Integer.parseInt(port.strip()), useAgentStore);
    } catch (NumberFormatException e) {
      throw new org.rdzv.api.RendezvousStateException(
          "MASTER_PORT in the store is not a number: " + port, e);
    }
  }

  /** Global and role ranks of this agent's workers (reference §9.3). */
  record Ranks(int base, int worldSize, int roleBase, int roleWorldSize) {
    static Ranks assign(List<RoleInfo> infos, int groupRank) {
      RoleInfo mine = infos.get(groupRank);
      int base = 0;
      int world = 0;
      int roleBase = 0;
      int roleWorld = 0;
      for (RoleInfo info : infos) {
        world += info.localWorldSize();
        if (info.rank() < groupRank) {
          base += info.localWorldSize();
        }
        if (info.role().equals(mine.role())) {
          roleWorld += info.localWorldSize();
          if (info.rank() < groupRank) {
            roleBase += info.localWorldSize();
          }
        }
      }
      return new Ranks(base, world, roleBase, roleWorld);
    }

    List<Integer> globalRanks(int n) {
      List<Integer> ranks = new ArrayList<>();
      for (int i = 0; i < n; i++) {
        ranks.add(base + i);
      }
      return ranks;
    }
  }

  private void startWorkers(Ranks ranks, Master master) {
    int restartCount = restartCount();
    Path attemptDir = runLogDir.resolve("attempt_" + restartCount);
    // A membership change keeps the attempt number: start its directory afresh, as PyTorch does.
    deleteTree(attemptDir);
    try {
      Files.createDirectories(attemptDir);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create log directory " + attemptDir, e);
    }
    Map<String, String> inherited = System.getenv();
    List<LocalWorkers.Spec> specs = new ArrayList<>();
    Map<Integer, Integer> globalRanks = new LinkedHashMap<>();
    int n = config.nprocPerNode();
    for (int local = 0; local < n; local++) {
      int rank = ranks.base + local;
      globalRanks.put(local, rank);
      Path dir = attemptDir.resolve(Integer.toString(local));
      Map<String, String> env = new LinkedHashMap<>(config.environment());
      env.put("LOCAL_RANK", Integer.toString(local));
      env.put("RANK", Integer.toString(rank));
      env.put("GROUP_RANK", Integer.toString(groupRank));
      env.put("ROLE_RANK", Integer.toString(ranks.roleBase + local));
      env.put("ROLE_NAME", role());
      env.put("LOCAL_WORLD_SIZE", Integer.toString(n));
      env.put("WORLD_SIZE", Integer.toString(ranks.worldSize));
      env.put("GROUP_WORLD_SIZE", Integer.toString(groupWorldSize));
      env.put("ROLE_WORLD_SIZE", Integer.toString(ranks.roleWorldSize));
      env.put("MASTER_ADDR", master.addr);
      env.put("MASTER_PORT", Integer.toString(master.port));
      env.put("TORCHELASTIC_RESTART_COUNT", Integer.toString(restartCount));
      env.put("TORCHELASTIC_MAX_RESTARTS", Integer.toString(config.maxRestarts()));
      env.put("TORCHELASTIC_RUN_ID", handler.runId());
      env.put("TORCHELASTIC_USE_AGENT_STORE", master.useAgentStore ? "True" : "False");
      env.put(
          "NCCL_ASYNC_ERROR_HANDLING", inherited.getOrDefault("NCCL_ASYNC_ERROR_HANDLING", "1"));
      env.put(
          "TORCH_NCCL_ASYNC_ERROR_HANDLING",
          inherited.getOrDefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1"));
      if (!inherited.containsKey("OMP_NUM_THREADS")
          && !config.environment().containsKey("OMP_NUM_THREADS")
          && n > 1) {
        // torchrun's rule: several workers per node must not each use every core.
        env.put("OMP_NUM_THREADS", "1");
      }
      env.put("TORCHELASTIC_ERROR_FILE", dir.resolve("error.json").toString());
      List<String> command = new ArrayList<>();
      for (String arg : config.command()) {
        command.add(arg.replace("${local_rank}", Integer.toString(local)));
      }
      String prefix =
          config
              .logLinePrefixTemplate()
              .replace("${rank}", Integer.toString(rank))
              .replace("${local_rank}", Integer.toString(local))
              .replace("${role_name}", role());
      specs.add(
          new LocalWorkers.Spec(
              local,
              rank,
              command,
              env,
              dir,
              config.redirects().get(local),
              config.tee().get(local),
              prefix));
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
   * PyTorch 1.13's exit barrier: wait (up to the barrier timeout) until every agent's workers have
   * ended, so that the agent hosting a store leaves last. Failures are logged, not raised.
   */
  private void exitBarrier() {
    long start = System.nanoTime();
    try {
      synchronize(
          store,
          Integer.toString(groupRank).getBytes(StandardCharsets.UTF_8),
          groupRank,
          groupWorldSize,
          TERMINAL_STATE_PREFIX,
          config.exitBarrierTimeout());
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

  private void prepareLogDir() {
    try {
      Path base;
      if (config.logDir() != null) {
        base = config.logDir();
        Files.createDirectories(base);
      } else {
        base = Files.createTempDirectory("torchelastic_");
        temporaryLogDir = true;
      }
      String random = UUID.randomUUID().toString().replace("-", "").substring(0, 8);
      runLogDir = Files.createDirectories(base.resolve(handler.runId() + "_" + random));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create the log directory: " + e.getMessage(), e);
    }
  }

  private static void deleteTree(Path dir) {
    if (dir == null || !Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException | UncheckedIOException e) {
      LOG.log(Level.DEBUG, "cannot delete {0}: {1}", dir, e.toString());
    }
  }

  /** What each agent tells the others about its workers: PyTorch's {@code _RoleInstanceInfo}. */
  record RoleInfo(String role, int rank, int localWorldSize, boolean agentStore) {

    /** PyTorch's JSON, byte for byte, plus our capability flag when it is set. */
    byte[] encode() {
      Map<String, Object> map = new LinkedHashMap<>();
      map.put("role", role);
      map.put("rank", rank);
      map.put("local_world_size", localWorldSize);
      if (agentStore) {
        map.put(AGENT_STORE_FIELD, true);
      }
      return Json.write(map).getBytes(StandardCharsets.UTF_8);
    }

    static RoleInfo decode(byte[] data, int expectedRank) {
      String text = new String(data, StandardCharsets.UTF_8);
      try {
        if (Json.parse(text) instanceof Map<?, ?> map
            && map.get("role") instanceof String role
            && map.get("rank") instanceof Long rank
            && map.get("local_world_size") instanceof Long n) {
          return new RoleInfo(
              role, rank.intValue(), n.intValue(), Boolean.TRUE.equals(map.get(AGENT_STORE_FIELD)));
        }
      } catch (IllegalArgumentException e) {
        // reported below
      }
      throw new org.rdzv.api.RendezvousStateException(
          "the role info of agent "
              + expectedRank
              + " is not what an elastic agent writes: "
              + text);
    }
  }
}
