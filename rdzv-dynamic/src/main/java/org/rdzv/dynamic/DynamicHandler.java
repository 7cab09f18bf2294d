package org.rdzv.dynamic;

import io.micrometer.core.instrument.MeterRegistry;
import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.rdzv.api.PrefixStore;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousException;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.api.RendezvousTimeoutException;
import org.rdzv.api.Store;
import org.rdzv.api.StoreException;
import org.rdzv.api.events.NodeState;
import org.rdzv.dynamic.spi.CreatedBackend;
import org.rdzv.store.StoreProtocol;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.store.TcpStoreServerOptions;

/** The dynamic rendezvous handler. See {@link DynamicRendezvousHandler}. */
final class DynamicHandler implements DynamicRendezvousHandler {
  private static final System.Logger LOG = System.getLogger(DynamicHandler.class.getName());
  private static final AtomicLong LOCAL_IDS = new AtomicLong();

  private final NodeDescriptor node;
  private final RendezvousSettings settings;
  private final String backendName;
  private final Store store;
  private final CreatedBackend owned;
  private final RendezvousBackend backend;
  private final Clock clock;
  private final StateHolder holder;
  private final Executor executor;
  private final RendezvousEvents events;
  private final RendezvousMetrics metrics;
  private final ReentrantLock lock = new ReentrantLock();
  private final List<RendezvousHandler.Listener> listeners = new CopyOnWriteArrayList<>();

  // Round membership, guarded by lock.
  private long myRound = -1;
  private Set<NodeDescriptor> roundMembers = Set.of();
  private final Set<NodeDescriptor> reportedLost = new LinkedHashSet<>();

  // Heartbeats.
  private final ReentrantLock timerLock = new ReentrantLock();
  private final Condition timerWake = timerLock.newCondition();
  private Thread heartbeat;
  private boolean heartbeating;
  private volatile boolean closed;
  private final java.util.concurrent.atomic.AtomicBoolean released =
      new java.util.concurrent.atomic.AtomicBoolean();

  // The bootstrap store of 2.x dialects (see bootstrap()), guarded by bootstrapLock.
  private final boolean shareStore;
  private final ReentrantLock bootstrapLock = new ReentrantLock();
  private TcpStoreServer bootstrapServer;
  private long bootstrapRound = -1;
  private RendezvousStoreInfo bootstrapInfo;
  private NodeDescriptor bootstrapOwner;
  private volatile StateDialect roundDialect;

  /**
   * @param shareStore PyTorch 2.x's TCPStore sharing: rank 0 serves its workers' store ({@code
   *     TORCH_DISABLE_SHARE_RDZV_TCP_STORE} not {@code 1})
   * @param meters where the handler's meters go
   */
  DynamicHandler(
      NodeDescriptor node,
      RendezvousSettings settings,
      CreatedBackend owned,
      Clock clock,
      boolean shareStore,
      MeterRegistry meters) {
    this.node = node;
    this.settings = settings;
    this.backendName = owned.backend().name();
    this.store = owned.store();
    this.owned = owned;
    this.backend = owned.backend();
    this.clock = clock;
    this.shareStore = shareStore;
    this.events = new RendezvousEvents(node, settings.runId());
    this.metrics = RendezvousMetrics.open(meters, settings.runId(), backendName);
    this.holder = new StateHolder(owned.backend(), settings, clock, events, metrics);
    this.executor =
        new Executor(
            node, holder, settings, clock, lock, this::beforeJoiningRound, events, metrics);
    // PyTorch's keys of such a run id are also keys of another run's round; say so once.
    RendezvousKeys.pytorchCollision(settings.runId())
        .ifPresent(why -> LOG.log(Level.WARNING, "rendezvous ''{0}'': {1}", settings.runId(), why));
  }

  /**
   * A handler over {@code created}, which it owns; {@code localAddr} (may be null) names the node;
   * meters go to {@code meters}.
   */
  static DynamicHandler create(
      CreatedBackend created, RendezvousSettings settings, String localAddr, MeterRegistry meters) {
    if (created.store() instanceof TcpStore tcp) {
      // A store server that answers only the 1.13 protocol is PyTorch 1.13's (ours and 2.x's
      // answer the 2.x handshake): its nodes write the 1.13 dialect. (A client of ours that
      // speaks 1.13 was told so: the dialect is pinned then, and this changes nothing.)
      settings =
          settings.withDefaultDialect(
              tcp.protocol() == StoreProtocol.V1_13 ? StateDialect.V1_13 : StateDialect.V2_6);
    }
    return new DynamicHandler(
        newNode(localAddr),
        settings,
        created,
        Clock.SYSTEM,
        !"1".equals(System.getenv(DISABLE_SHARE_ENV)),
        meters);
  }

  /** PyTorch 2.x's opt-out of sharing the bootstrap store with workers. */
  static final String DISABLE_SHARE_ENV = "TORCH_DISABLE_SHARE_RDZV_TCP_STORE";

  /** A fresh descriptor: {@code local_addr} or this host's FQDN, the pid, a per-JVM counter. */
  static NodeDescriptor newNode(String localAddr) {
    String host =
        localAddr != null && !localAddr.isEmpty() ? localAddr : RendezvousStoreInfo.fqdn();
    return new NodeDescriptor(host, ProcessHandle.current().pid(), LOCAL_IDS.getAndIncrement());
  }

  @Override
  public String backend() {
    return backendName;
  }

  @Override
  public String runId() {
    return settings.runId();
  }

  @Override
  public NodeDescriptor node() {
    return node;
  }

  /**
   * PyTorch 2.x's {@code use_agent_store}: under a 2.x dialect, {@code true} unless {@code
   * TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1} (rank 0 then serves the workers' store at the bootstrap
   * address); PyTorch 1.13 has no such store, so {@code false} under the 1.13 dialect. Decided by
   * the dialect of the last round joined, before any by the configured one.
   */
  @Override
  public boolean useAgentStore() {
    StateDialect d = roundDialect;
    return shareStore && (d != null ? d : settings.dialect()) != StateDialect.V1_13;
  }

  @Override
  public RendezvousInfo nextRendezvous() {
    long start = clock.nanoTime();
    try {
      RendezvousInfo info = join();
      metrics.joined(clock.nanoTime() - start);
      return info;
    } catch (RuntimeException e) {
      events.handlerFailed("next_rendezvous", e);
      metrics.joinFailed(clock.nanoTime() - start, e);
      throw e;
    }
  }

  private RendezvousInfo join() {
    LOG.log(
        Level.INFO,
        "The node ''{0}'' attempts to join the next round of the rendezvous ''{1}''.",
        node,
        settings.runId());
    events.handler(
        "next_rendezvous",
        "The node '"
            + node
            + "' attempts to join the next round of the rendezvous '"
            + settings.runId()
            + "'.",
        NodeState.RUNNING,
        null,
        null);
    stopHeartbeats();
    // For status tools: this node's range and join deadline (rdzv's own key, best effort).
    backend.publishNote(node, NodeNote.joining(settings, clock.wallNow()));
    long round;
    int rank;
    int worldSize;
    StateDialect dialect;
    NodeDescriptor rank0;
    lock.lock();
    try {
      if (holder.state().round == 0 && settings.maxNodes() > 1) {
        // PyTorch's skew of the first attempt, to spread the load on the backend. A rendezvous of
        // one node (--standalone) has nobody to collide with, so it skips the wait.
        sleep(Duration.ofNanos(ThreadLocalRandom.current().nextLong(300_000_001L)));
      }
      long deadline = clock.nanoTime() + settings.joinTimeout().toNanos();
      executor.run(Ops.EXIT, deadline, false);
      executor.run(Ops.JOIN, deadline, true, true);
      MutableState s = holder.state();
      round = s.round;
      rank = s.participants.get(node);
      // Participants that already left again for the next round (a fast node) are gone from the
      // state, but kept their ranks: the world is at least the highest rank + 1.
      worldSize =
          Math.max(
              s.participants.size(),
              1 + s.participants.values().stream().mapToInt(Integer::intValue).max().orElse(0));
      dialect = holder.dialect();
      rank0 = rankZero(s);
      myRound = round;
      roundMembers = Set.copyOf(s.participants.keySet());
      reportedLost.clear();
    } finally {
      lock.unlock();
    }
    startHeartbeats();
    Store prefixed = new PrefixStore(RendezvousKeys.of(settings.runId()).roundPrefix(round), store);
    roundDialect = dialect;
    RendezvousStoreInfo bootstrap =
        dialect == StateDialect.V1_13 ? noBootstrap() : bootstrap(prefixed, rank, rank0, round);
    LOG.log(
        Level.INFO,
        "The node ''{0}'' has joined round {1} of the rendezvous ''{2}'' as rank {3} in a world of size {4}.",
        node,
        round,
        settings.runId(),
        rank,
        worldSize);
    events.handler(
        "next_rendezvous",
        "The node '"
            + node
            + "' has joined round "
            + round
            + " of the rendezvous '"
            + settings.runId()
            + "' as rank "
            + rank
            + " in a world of size "
            + worldSize
            + ".",
        NodeState.RUNNING,
        rank,
        null);
    return new RendezvousInfo(prefixed, rank, worldSize, bootstrap, round);
  }

  private static NodeDescriptor rankZero(MutableState s) {
    for (var e : s.participants.entrySet()) {
      if (e.getValue() == 0) {
        return e.getKey();
      }
    }
    return null; // it already left the round again (the round stays complete)
  }

  /**
   * Where this round's workers find their store, as PyTorch 2.x's {@code next_rendezvous}: with
   * sharing on, rank 0 serves a TCPStore (both protocol families) and publishes {@code
   * MASTER_ADDR}/{@code MASTER_PORT} in the round's prefix; other ranks read them. Unlike 2.6,
   * which keeps one server and its keys for the handler's life (PyTorch issue #135712), rank 0
   * serves each round from a fresh server on the port of the previous one (2.6 nodes keep the
   * address they read in their first round), so no key of an earlier round's workers survives (see
   * {@link #beforeJoiningRound}); and it publishes in every round, so newcomers of later rounds
   * find the address. A rank that read the address from the same rank 0 before keeps it, as 2.6
   * does (a 2.6 rank 0 publishes only once). With sharing off, rank 0 publishes a free port on
   * which worker rank 0 hosts.
   */
  private RendezvousStoreInfo bootstrap(
      Store prefixed, int rank, NodeDescriptor rank0, long round) {
    bootstrapLock.lock();
    try {
      if (rank == 0) {
        Integer port = null;
        if (shareStore) {
          if (bootstrapServer == null || bootstrapRound < round) {
            renewBootstrapServer(round);
          }
          port = bootstrapServer.port();
        } else {
          closeBootstrapServer();
        }
        try {
          bootstrapInfo = RendezvousStoreInfo.build(0, prefixed, node.host(), port);
        } catch (StoreException e) {
          // Without the address the other ranks' workers cannot start: fail this round.
          throw new RendezvousConnectionException(
              "The node '"
                  + node
                  + "' cannot publish MASTER_ADDR/MASTER_PORT in round "
                  + round
                  + " of the rendezvous '"
                  + settings.runId()
                  + "'.",
              e);
        }
        bootstrapOwner = node;
        return bootstrapInfo;
      }
      closeBootstrapServer(); // rank 0 is another node now: its server is the workers' store
      if (shareStore && bootstrapInfo != null && bootstrapOwner.equals(rank0)) {
        return bootstrapInfo;
      }
      try {
        bootstrapInfo = RendezvousStoreInfo.build(rank, prefixed, node.host(), null);
        bootstrapOwner = rank0;
        return bootstrapInfo;
      } catch (StoreException e) {
        // A 2.6 rank 0 publishes only in its first round (it caches): a newcomer of a later round
        // finds nothing, as a 2.6 newcomer would not. The round itself is fine.
        LOG.log(
            Level.WARNING,
            "rendezvous ''{0}'' round {1}: no MASTER_ADDR/MASTER_PORT from rank 0 {2} ({3})",
            settings.runId(),
            String.valueOf(round),
            rank0,
            e.getMessage());
        return null;
      }
    } finally {
      bootstrapLock.unlock();
    }
  }

  /**
   * Called (under the handler's lock) when this node decides to add itself to the participants of a
   * round, which every node that joins a round does (a Java node ahead in the turn queue may then
   * write the addition for it). The round is open, so every participant of the previous one has
   * left it and their workers are stopped; it has not completed with this node in it, so none of
   * its workers has connected: the moment to replace the bootstrap server of the previous round by
   * an empty one, if this node served it. (Should that not happen, rank 0 renews when it returns.)
   */
  private void beforeJoiningRound(MutableState joining) {
    bootstrapLock.lock();
    try {
      if (bootstrapServer != null && bootstrapRound < joining.round) {
        renewBootstrapServer(joining.round);
      }
    } finally {
      bootstrapLock.unlock();
    }
  }

  private RendezvousStoreInfo noBootstrap() {
    bootstrapLock.lock();
    try {
      closeBootstrapServer();
      bootstrapInfo = null;
      bootstrapOwner = null;
      return null;
    } finally {
      bootstrapLock.unlock();
    }
  }

  /**
   * Starts an empty bootstrap server for {@code round}, on the port of the current one if any.
   * Holds bootstrapLock.
   */
  private void renewBootstrapServer(long round) {
    int port = 0;
    if (bootstrapServer != null) {
      port = bootstrapServer.port();
      closeBootstrapServer();
    }
    try {
      bootstrapServer = startBootstrapServer(port);
    } catch (StoreException e) {
      if (port == 0) {
        throw new RendezvousConnectionException(
            "The node '" + node + "' cannot host the bootstrap store of its workers.", e);
      }
      // Someone took the port meanwhile: Java nodes read the new one; 2.6 nodes of earlier rounds
      // keep the old address.
      LOG.log(
          Level.WARNING,
          "rendezvous ''{0}'' round {1}: the bootstrap store cannot listen on port {2} again"
              + " ({3}); a new port is published",
          settings.runId(),
          String.valueOf(round),
          String.valueOf(port),
          e.getMessage());
      bootstrapServer = startBootstrapServer(0);
    }
    bootstrapRound = round;
    LOG.log(
        Level.INFO,
        "rendezvous ''{0}'' round {1}: the node ''{2}'' serves its workers'' store on port {3}",
        settings.runId(),
        String.valueOf(round),
        node,
        String.valueOf(bootstrapServer.port()));
  }

  private static TcpStoreServer startBootstrapServer(int port) {
    // PyTorch's server binds every interface, whatever host it is given.
    return TcpStoreServer.start(TcpStoreServerOptions.builder().port(port).build());
  }

  /** Holds bootstrapLock. */
  private void closeBootstrapServer() {
    TcpStoreServer server = bootstrapServer;
    bootstrapServer = null;
    if (server == null) {
      return;
    }
    server.close();
    try {
      // Its port is bound again at once: wait until the listening socket is gone.
      server.awaitTermination(Duration.ofSeconds(5));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** The server of this round's workers' store, while this node is rank 0 and shares it. */
  java.util.Optional<TcpStoreServer> bootstrapServer() {
    bootstrapLock.lock();
    try {
      return java.util.Optional.ofNullable(bootstrapServer);
    } finally {
      bootstrapLock.unlock();
    }
  }

  private void releaseBootstrap() {
    bootstrapLock.lock();
    try {
      closeBootstrapServer();
    } finally {
      bootstrapLock.unlock();
    }
  }

  @Override
  public boolean isClosed() {
    return withSync("is_closed", s -> s.closed);
  }

  @Override
  public int numNodesWaiting() {
    return withSync("num_nodes_waiting", s -> s.waitList.size());
  }

  @Override
  public StateSnapshot state() {
    return withSync("state", MutableState::snapshot);
  }

  private <T> T withSync(String method, java.util.function.Function<MutableState, T> read) {
    Set<NodeDescriptor> lost;
    T result;
    lock.lock();
    try {
      holder.sync();
      result = read.apply(holder.state());
      lost = newlyLost();
    } catch (RuntimeException e) {
      events.handlerFailed(method, e);
      throw e;
    } finally {
      lock.unlock();
    }
    notifyLost(lost);
    return result;
  }

  @Override
  public void setClosed() {
    lockWithinCloseTimeout("close");
    try {
      closeOp();
    } catch (RuntimeException e) {
      events.handlerFailed("set_closed", e);
      throw e;
    } finally {
      lock.unlock();
    }
  }

  @Override
  public boolean shutdown() {
    stopHeartbeats();
    releaseBootstrap(); // the job is over: its workers' store goes with it
    try {
      lockWithinCloseTimeout("shut down");
      try {
        closeOp();
      } finally {
        lock.unlock();
      }
      backend.publishNote(node, null);
      return true;
    } catch (RendezvousException e) {
      LOG.log(
          Level.WARNING,
          "The node ''{0}'' has failed to shutdown the rendezvous ''{1}'' due to an error of type {2}. ({3})",
          node,
          settings.runId(),
          e.getClass().getSimpleName(),
          causes(e));
      events.handler(
          "shutdown",
          "The node '"
              + node
              + "' has failed to shutdown the rendezvous '"
              + settings.runId()
              + "' due to an error of type "
              + RendezvousEvents.pytorchName(e)
              + ".",
          NodeState.FAILED,
          null,
          e);
      return false;
    } catch (RuntimeException e) {
      events.handlerFailed("shutdown", e);
      throw e;
    }
  }

  /**
   * Takes the operation lock, waiting at most {@code close_timeout}: closing, shutting down and
   * leaving must end even when another operation of this node is stuck on a store that went away
   * (each store call is bounded by the read timeout, but a heartbeat and a join could queue).
   *
   * @throws RendezvousTimeoutException if the lock stays held for the close timeout
   */
  private void lockWithinCloseTimeout(String what) {
    try {
      if (lock.tryLock(settings.closeTimeout().toNanos(), TimeUnit.NANOSECONDS)) {
        return;
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RendezvousException("interrupted while waiting to " + what + " the rendezvous", e);
    }
    throw new RendezvousTimeoutException(
        "The node '"
            + node
            + "' could not "
            + what
            + " the rendezvous '"
            + settings.runId()
            + "': another operation of this node held it for the close timeout ("
            + settings.closeTimeout().toSeconds()
            + " s).");
  }

  /** The messages of {@code e} and its causes, for a log line. */
  static String causes(Throwable e) {
    StringBuilder b = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) {
      String m = t.getMessage() == null ? t.getClass().getSimpleName() : t.getMessage();
      m = m.replace(" See inner exception for details.", "").strip();
      if (b.indexOf(m) >= 0) {
        continue;
      }
      if (b.length() > 0) {
        if (b.charAt(b.length() - 1) == '.') {
          b.setLength(b.length() - 1);
        }
        b.append(": ");
      }
      b.append(m);
      if (t.getCause() == t) {
        break;
      }
    }
    return b.toString();
  }

  private void closeOp() {
    executor.run(Ops.CLOSE, clock.nanoTime() + settings.closeTimeout().toNanos(), false);
    LOG.log(
        Level.INFO, "The node ''{0}'' has closed the rendezvous ''{1}''.", node, settings.runId());
    events.handler(
        "_close",
        "The node '" + node + "' has closed the rendezvous '" + settings.runId() + "'.",
        NodeState.SUCCEEDED,
        null,
        null);
  }

  @Override
  public void leave() {
    stopHeartbeats();
    lockWithinCloseTimeout("leave");
    try {
      executor.run(Ops.LEAVE, clock.nanoTime() + settings.closeTimeout().toNanos(), false);
      myRound = -1;
      roundMembers = Set.of();
    } finally {
      lock.unlock();
    }
    backend.publishNote(node, null);
    LOG.log(Level.INFO, "The node ''{0}'' left the rendezvous ''{1}''.", node, settings.runId());
  }

  @Override
  public Set<NodeDescriptor> lostParticipants() {
    lock.lock();
    try {
      return Set.copyOf(reportedLost);
    } finally {
      lock.unlock();
    }
  }

  @Override
  public void addListener(RendezvousHandler.Listener listener) {
    listeners.add(java.util.Objects.requireNonNull(listener, "listener"));
  }

  @Override
  public void removeListener(RendezvousHandler.Listener listener) {
    listeners.remove(listener);
  }

  @Override
  public void close() {
    closed = true;
    stopHeartbeats();
    releaseBootstrap();
    if (released.compareAndSet(false, true)) {
      metrics.close();
      // Logs its own failures: closing never throws.
      owned.close();
    }
  }

  // ---- heartbeats

  /** One keep-alive: PyTorch's {@code _keep_alive}; failures are logged, never thrown. */
  void keepAlive() {
    Set<NodeDescriptor> lost = Set.of();
    lock.lock();
    try {
      executor.run(Ops.KEEP_ALIVE, clock.nanoTime() + settings.heartbeatTimeout().toNanos(), false);
      lost = newlyLost();
      metrics.heartbeat(true);
      events.handler(
          "_keep_alive",
          "The node '"
              + node
              + "' has sent a keep-alive heartbeat to the rendezvous '"
              + settings.runId()
              + "'.",
          NodeState.RUNNING,
          null,
          null);
    } catch (RendezvousException e) {
      LOG.log(
          Level.WARNING,
          "The node ''{0}'' has failed to send a keep-alive heartbeat to the rendezvous ''{1}'' due to an error of type {2}. ({3})",
          node,
          settings.runId(),
          e.getClass().getSimpleName(),
          causes(e));
      metrics.heartbeat(false);
      events.handler(
          "_keep_alive",
          "The node '"
              + node
              + "' has failed to send a keep-alive heartbeat to the rendezvous '"
              + settings.runId()
              + "' due to an error of type "
              + RendezvousEvents.pytorchName(e)
              + ".",
          NodeState.FAILED,
          null,
          e);
    } finally {
      lock.unlock();
    }
    notifyLost(lost);
  }

  private void startHeartbeats() {
    timerLock.lock();
    try {
      if (closed || heartbeating) {
        return;
      }
      heartbeating = true;
      heartbeat =
          Thread.ofVirtual()
              .name("RendezvousKeepAliveTimer_" + node.localId())
              .start(this::heartbeatLoop);
    } finally {
      timerLock.unlock();
    }
  }

  private void heartbeatLoop() {
    long interval = settings.keepAliveInterval().toNanos();
    while (true) {
      timerLock.lock();
      try {
        long left = interval;
        while (heartbeating && left > 0) {
          left = timerWake.awaitNanos(left);
        }
        if (!heartbeating) {
          return;
        }
      } catch (InterruptedException e) {
        return;
      } finally {
        timerLock.unlock();
      }
      keepAlive();
    }
  }

  private void stopHeartbeats() {
    Thread t;
    timerLock.lock();
    try {
      heartbeating = false;
      timerWake.signalAll();
      t = heartbeat;
      heartbeat = null;
    } finally {
      timerLock.unlock();
    }
    if (t != null && t != Thread.currentThread()) {
      try {
        // A keep-alive in flight finishes first (it holds the operation lock).
        t.join(settings.heartbeatTimeout().plusSeconds(1).toMillis());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  // ---- lost participants

  /** Must hold lock. */
  private Set<NodeDescriptor> newlyLost() {
    MutableState s = holder.state();
    if (myRound < 0 || s.round != myRound || !s.participants.containsKey(node)) {
      return Set.of();
    }
    Set<NodeDescriptor> fresh = new HashSet<>();
    for (NodeDescriptor member : roundMembers) {
      if (!s.participants.containsKey(member) && reportedLost.add(member)) {
        fresh.add(member);
      }
    }
    return fresh;
  }

  private void notifyLost(Set<NodeDescriptor> lost) {
    if (lost.isEmpty()) {
      return;
    }
    metrics.lost(lost.size());
    LOG.log(
        Level.WARNING,
        "rendezvous ''{0}'' round {1}: participants {2} stopped heartbeating or left",
        settings.runId(),
        String.valueOf(myRound),
        lost);
    Set<NodeDescriptor> nodes = Set.copyOf(lost);
    Set<String> names = null;
    for (RendezvousHandler.Listener l : listeners) {
      try {
        if (l instanceof NodeListener typed) {
          typed.nodesLost(myRound, nodes);
        } else {
          if (names == null) {
            names =
                nodes.stream()
                    .map(NodeDescriptor::toString)
                    .collect(java.util.stream.Collectors.toUnmodifiableSet());
          }
          l.participantsLost(myRound, names);
        }
      } catch (RuntimeException e) {
        LOG.log(Level.WARNING, "a rendezvous listener failed: {0}", e.toString());
      }
    }
  }

  private void sleep(Duration d) {
    try {
      clock.sleep(d);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RendezvousException("interrupted", e);
    }
  }

  @Override
  public String toString() {
    return "DynamicRendezvousHandler(" + backendName + ", " + settings.runId() + ", " + node + ")";
  }
}
