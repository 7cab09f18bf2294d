package org.rdzv.dynamic;

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
import org.rdzv.api.RendezvousException;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.api.RendezvousTimeoutException;
import org.rdzv.api.Store;
import org.rdzv.dynamic.spi.CreatedBackend;

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

  DynamicHandler(
      NodeDescriptor node, RendezvousSettings settings, CreatedBackend owned, Clock clock) {
    this.node = node;
    this.settings = settings;
    this.backendName = owned.backend().name();
    this.store = owned.store();
    this.owned = owned;
    this.backend = owned.backend();
    this.clock = clock;
    this.holder = new StateHolder(owned.backend(), settings, clock);
    this.executor = new Executor(node, holder, settings, clock, lock);
    // PyTorch's keys of such a run id are also keys of another run's round; say so once.
    RendezvousKeys.pytorchCollision(settings.runId())
        .ifPresent(why -> LOG.log(Level.WARNING, "rendezvous ''{0}'': {1}", settings.runId(), why));
  }

  /**
   * A handler over {@code created}, which it owns; {@code localAddr} (may be null) names the node.
   */
  static DynamicHandler create(
      CreatedBackend created, RendezvousSettings settings, String localAddr) {
    return new DynamicHandler(newNode(localAddr), settings, created, Clock.SYSTEM);
  }

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

  @Override
  public boolean useAgentStore() {
    return false;
  }

  @Override
  public RendezvousInfo nextRendezvous() {
    LOG.log(
        Level.INFO,
        "The node ''{0}'' attempts to join the next round of the rendezvous ''{1}''.",
        node,
        settings.runId());
    stopHeartbeats();
    // For status tools: this node's range and join deadline (rdzv's own key, best effort).
    backend.publishNote(node, NodeNote.joining(settings, clock.wallNow()));
    long round;
    int rank;
    int worldSize;
    StateDialect dialect;
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
      worldSize = s.participants.size();
      dialect = holder.dialect();
      myRound = round;
      roundMembers = Set.copyOf(s.participants.keySet());
      reportedLost.clear();
    } finally {
      lock.unlock();
    }
    startHeartbeats();
    Store prefixed = new PrefixStore(RendezvousKeys.of(settings.runId()).roundPrefix(round), store);
    RendezvousStoreInfo bootstrap = null;
    if (dialect != StateDialect.V1_13) {
      // PyTorch 2.x publishes where workers find their store; rank 0 writes it into every
      // round's prefix, so newcomers of later rounds find it too.
      try {
        bootstrap = RendezvousStoreInfo.build(rank, prefixed, node.host(), null);
      } catch (org.rdzv.api.StoreException e) {
        // A 2.x PyTorch rank 0 that cached its bootstrap information does not publish it again in
        // later rounds; the round itself is fine, so report no bootstrap information.
        LOG.log(
            Level.WARNING,
            "rendezvous ''{0}'' round {1}: no MASTER_ADDR/MASTER_PORT from rank 0 ({2})",
            settings.runId(),
            String.valueOf(round),
            e.getMessage());
      }
    }
    LOG.log(
        Level.INFO,
        "The node ''{0}'' has joined round {1} of the rendezvous ''{2}'' as rank {3} in a world of size {4}.",
        node,
        round,
        settings.runId(),
        rank,
        worldSize);
    return new RendezvousInfo(prefixed, rank, worldSize, bootstrap, round);
  }

  @Override
  public boolean isClosed() {
    return withSync(s -> s.closed);
  }

  @Override
  public int numNodesWaiting() {
    return withSync(s -> s.waitList.size());
  }

  @Override
  public StateSnapshot state() {
    return withSync(MutableState::snapshot);
  }

  private <T> T withSync(java.util.function.Function<MutableState, T> read) {
    Set<NodeDescriptor> lost;
    T result;
    lock.lock();
    try {
      holder.sync();
      result = read.apply(holder.state());
      lost = newlyLost();
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
    } finally {
      lock.unlock();
    }
  }

  @Override
  public boolean shutdown() {
    stopHeartbeats();
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
      return false;
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
    if (released.compareAndSet(false, true)) {
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
    } catch (RendezvousException e) {
      LOG.log(
          Level.WARNING,
          "The node ''{0}'' has failed to send a keep-alive heartbeat to the rendezvous ''{1}'' due to an error of type {2}. ({3})",
          node,
          settings.runId(),
          e.getClass().getSimpleName(),
          causes(e));
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
