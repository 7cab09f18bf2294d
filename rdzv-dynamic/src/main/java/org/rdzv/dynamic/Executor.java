package org.rdzv.dynamic;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.locks.ReentrantLock;
import org.rdzv.api.RendezvousClosedException;
import org.rdzv.api.RendezvousException;
import org.rdzv.api.RendezvousGracefulExitException;
import org.rdzv.api.RendezvousTimeoutException;
import org.rdzv.api.events.NodeState;

/**
 * Runs an operation to completion: sync, ask the operation for an action, apply it, mark the state
 * dirty, repeat (PyTorch's {@code _DistributedRendezvousOpExecutor}).
 *
 * <p>Differences from PyTorch, none visible in the shared state: a {@code SYNC} waits for a
 * signalled change (or the next time-driven decision, at most the poll interval) instead of
 * sleeping one second; membership writes queue for a turn among Java writers (when the backend
 * offers turns), and a turn holder that adds itself also admits the joiners queued behind it; a
 * rejected write outside a turn backs off for a jittered, exponentially growing pause and re-reads
 * before deciding again. See docs/dynamic-rendezvous.md.
 */
final class Executor {
  private static final System.Logger LOG = System.getLogger(Executor.class.getName());
  private static final long BACKOFF_BASE_NANOS = 500_000; // 0.5 ms
  private static final int BACKOFF_MAX_SHIFT = 9; // ~0.25 s
  private static final long HEARTBEAT_BACKOFF_BASE_NANOS = 10_000_000; // 10 ms
  private static final long MAX_BACKOFF_NANOS = 1_000_000_000; // 1 s

  private final NodeDescriptor node;
  private final StateHolder holder;
  private final RendezvousSettings settings;
  private final Clock clock;
  private final ReentrantLock lock;
  private final java.util.function.Consumer<MutableState> beforeJoin;
  private int conflicts;
  private RendezvousBackend.Turn turn;

  /** Queued joiners the pending write adds besides this node. */
  private int admitted;

  private boolean turnsSupported = true;
  private Ops.Action lastWrite;

  /** Set while a join runs: what it reports. */
  private JoinProgress progress;

  /** How long a queue for a turn may stand still before this node writes anyway. */
  private static final Duration TURN_TIMEOUT = Duration.ofSeconds(1);

  /** Where applied actions and sync outcomes are told; null in unit tests that need neither. */
  private final RendezvousEvents events;

  private final RendezvousMetrics metrics;

  Executor(NodeDescriptor node, StateHolder holder, RendezvousSettings settings, Clock clock) {
    this(node, holder, settings, clock, null);
  }

  /**
   * @param lock the handler's lock, released while a SYNC waits so that readers such as {@code
   *     numNodesWaiting()} are not blocked by a long join
   */
  Executor(
      NodeDescriptor node,
      StateHolder holder,
      RendezvousSettings settings,
      Clock clock,
      ReentrantLock lock) {
    this(node, holder, settings, clock, lock, null, null, null);
  }

  /**
   * @param beforeJoin told, with the state it decided on, each time this node decides to add itself
   *     to a round's participants (the handler renews its bootstrap store then); may be null
   * @param events where applied actions and sync outcomes are recorded; may be null
   * @param metrics where write conflicts are counted; may be null
   */
  Executor(
      NodeDescriptor node,
      StateHolder holder,
      RendezvousSettings settings,
      Clock clock,
      ReentrantLock lock,
      java.util.function.Consumer<MutableState> beforeJoin,
      RendezvousEvents events,
      RendezvousMetrics metrics) {
    this.node = node;
    this.holder = holder;
    this.settings = settings;
    this.clock = clock;
    this.lock = lock;
    this.beforeJoin = beforeJoin;
    this.events = events;
    this.metrics = metrics;
  }

  Ops.Context context() {
    return new Ops.Context(
        node, holder.state(), settings, holder.dialect(), now(), clock.nanoTime());
  }

  private Instant now() {
    return clock.wallNow().truncatedTo(ChronoUnit.MICROS);
  }

  /**
   * Runs {@code op} until it finishes.
   *
   * @param resetDeadlineOnUnpark whether leaving the redundancy list restarts the join deadline
   *     (PyTorch 2.x's join)
   */
  void run(Ops.Op op, long deadlineNanos, boolean resetDeadlineOnUnpark) {
    run(op, deadlineNanos, resetDeadlineOnUnpark, false);
  }

  /**
   * Runs {@code op} until it finishes; with {@code reportProgress} (a join), says every few seconds
   * how the round forms ({@link JoinProgress}) and names who had joined when it times out.
   */
  void run(Ops.Op op, long deadlineNanos, boolean resetDeadlineOnUnpark, boolean reportProgress) {
    conflicts = 0;
    progress = reportProgress ? new JoinProgress(clock.nanoTime()) : null;
    try {
      runInterruptibly(op, deadlineNanos, resetDeadlineOnUnpark);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RendezvousException("interrupted while running a rendezvous operation", e);
    } finally {
      progress = null;
      releaseTurn();
    }
  }

  private void takeTurn(NodeDescriptor joining) throws InterruptedException {
    boolean release = lock != null && lock.isHeldByCurrentThread() && lock.getHoldCount() == 1;
    if (release) {
      lock.unlock();
    }
    try {
      turn = holder.awaitTurn(TURN_TIMEOUT, joining);
      if (turn == RendezvousBackend.Turn.NONE) {
        // The backend has no turns: write optimistically, as PyTorch does.
        turn = null;
        turnsSupported = false;
      }
    } finally {
      if (release) {
        lock.lock();
      }
    }
  }

  private void releaseTurn() {
    admitted = 0;
    if (turn != null) {
      turn.close();
      turn = null;
    }
  }

  private void runInterruptibly(Ops.Op op, long deadline, boolean resetDeadlineOnUnpark)
      throws InterruptedException {
    while (true) {
      Boolean hasSet = holder.sync();
      if (hasSet != null) {
        recordSync(hasSet);
        if (hasSet) {
          conflicts = 0;
          if (turn != null && admitted > 0) {
            turn.admitted(admitted);
          }
          releaseTurn();
        } else {
          // Someone wrote first. Retrying at once with the state that won makes every contender
          // collide again. In our turn (a PyTorch node or a heartbeat wrote meanwhile) keep the
          // turn and retry after a short pause; otherwise wait a jittered, growing pause. Then
          // read afresh and re-decide.
          if (turn != null) {
            clock.sleep(Duration.ofNanos(ThreadLocalRandom.current().nextLong(1_000_001L)));
          } else {
            backOff(lastWrite == Ops.Action.KEEP_ALIVE);
          }
          holder.invalidate();
          continue;
        }
      }
      holder.checkDialect();
      Ops.Context ctx = context();
      Ops.Action action = op.next(ctx, deadline);
      if (action == Ops.Action.ADD_TO_PARTICIPANTS && beforeJoin != null) {
        // Told at the decision, before queueing for a turn: a Java node ahead in the queue may
        // add this one with its own write.
        beforeJoin.accept(ctx.state());
      }
      switch (action) {
        case FINISH -> {
          return;
        }
        case ERROR_CLOSED -> {
          if (ctx.state().round == ScalableHandler.FENCE_ROUND) {
            // Nodes of the scalable protocol own this run id (their fence is a closed state).
            throw new org.rdzv.api.RendezvousStateException(
                ScalableHandler.mixedProtocols(settings.runId(), "scalable"));
          }
          throw new RendezvousClosedException(
              "The rendezvous '" + settings.runId() + "' is closed.");
        }
        case ERROR_TIMEOUT ->
            throw new RendezvousTimeoutException(
                "The rendezvous '"
                    + settings.runId()
                    + "' operation timed out."
                    + (op == Ops.JOIN ? joinTimeoutHint(ctx) : "")
                    + (progress == null ? "" : " " + progress.timeoutDetail(ctx)));
        case ERROR_GRACEFUL_EXIT ->
            throw new RendezvousGracefulExitException(
                "The rendezvous '"
                    + settings.runId()
                    + "' is closed, terminating pending rendezvous.");
        case SYNC -> {
          releaseTurn();
          if (progress != null) {
            progress.observe(ctx);
            String line = progress.due(ctx, deadline);
            if (line != null) {
              LOG.log(Level.INFO, line);
            }
          }
          awaitChange(waitBudget(ctx, deadline));
        }
        default -> {
          if (turn == null && action != Ops.Action.KEEP_ALIVE && turnsSupported) {
            // Membership writes contend; queue for a turn among Java writers, then re-read and
            // re-decide with the freshest state. Heartbeats never queue: a long queue must not
            // delay them past the expiry; they back off on a collision instead.
            takeTurn(action == Ops.Action.ADD_TO_PARTICIPANTS ? node : null);
            if (turn != null) {
              holder.invalidate();
              continue;
            }
          }
          apply(action, ctx);
          lastWrite = action;
          if (action == Ops.Action.REMOVE_FROM_REDUNDANCY_LIST && resetDeadlineOnUnpark) {
            deadline = clock.nanoTime() + settings.joinTimeout().toNanos();
          }
          holder.markDirty();
        }
      }
    }
  }

  /**
   * Why a join may time out where PyTorch nodes were expected: they cannot read a state of the
   * other dialect and fail without a trace in the state (docs/dynamic-rendezvous.md, "Dialects").
   */
  private String joinTimeoutHint(Ops.Context ctx) {
    MutableState s = ctx.state();
    if (s.complete) {
      return "";
    }
    StateDialect d = ctx.dialect();
    String cannot =
        d == StateDialect.V1_13
            ? "if PyTorch 2.x nodes are among the missing, they cannot read a state in the 1.13"
                + " dialect (for 2.x nodes leave"
                + " store_protocol and state_dialect unset, and use a new run id)"
            : "if PyTorch 1.13 nodes are among the missing, they cannot read a state in the "
                + d.label()
                + " dialect (for 1.13 nodes set store_protocol=1.13 on every rdzv node)";
    // This node may have removed itself already (the rollback window after the deadline).
    int joined = s.participants.size() + (s.participants.containsKey(node) ? 0 : 1);
    return " " + joined + " of at least " + settings.minNodes() + " nodes joined; " + cannot + ".";
  }

  private void awaitChange(Duration budget) throws InterruptedException {
    Object seen = holder.token();
    boolean release = lock != null && lock.isHeldByCurrentThread() && lock.getHoldCount() == 1;
    if (release) {
      lock.unlock();
    }
    boolean changed = false;
    try {
      changed = holder.awaitChange(seen, budget);
    } finally {
      if (release) {
        lock.lock();
      }
    }
    if (changed) {
      holder.invalidate();
    }
  }

  /**
   * A heartbeat has {@code keep_alive_interval × (keep_alive_max_attempt − 1)} of slack before
   * others drop this node, so a colliding heartbeat backs off from a larger base and leaves the
   * store to the membership writes that others wait for.
   */
  private void backOff(boolean heartbeat) throws InterruptedException {
    int shift = Math.min(conflicts++, BACKOFF_MAX_SHIFT);
    long base = heartbeat ? HEARTBEAT_BACKOFF_BASE_NANOS : BACKOFF_BASE_NANOS;
    long bound = Math.min(base << shift, MAX_BACKOFF_NANOS);
    clock.sleep(Duration.ofNanos(ThreadLocalRandom.current().nextLong(bound + 1)));
  }

  /** How long a SYNC may wait: until the next time-driven decision, at most the poll interval. */
  private Duration waitBudget(Ops.Context ctx, long deadline) {
    // PyTorch nodes do not signal their writes, so poll for them every second; when every node
    // in the state is a Java node that signals, polling is only a safety net.
    long budget =
        (holder.everyNodeSignals() ? settings.keepAliveInterval() : settings.pollInterval())
            .toNanos();
    budget = Math.min(budget, deadline - ctx.nanoNow() + 1_000_000);
    if (progress != null) {
      budget = Math.min(budget, progress.nanosToNext(ctx.nanoNow()) + 1_000_000);
    }
    MutableState s = ctx.state();
    if (!s.complete && s.deadline != null && s.participants.containsKey(node)) {
      budget = Math.min(budget, Duration.between(ctx.wallNow(), s.deadline).toNanos() + 1_000_000);
    }
    Instant last = s.lastHeartbeats.get(node);
    if (last != null) {
      Instant due = last.plus(settings.keepAliveInterval());
      budget = Math.min(budget, Duration.between(ctx.wallNow(), due).toNanos() + 1_000_000);
    }
    return Duration.ofNanos(Math.max(budget, 1_000_000));
  }

  void apply(Ops.Action action, Ops.Context ctx) {
    MutableState s = ctx.state();
    recordAction(action, s);
    boolean wasComplete = s.complete;
    switch (action) {
      case KEEP_ALIVE -> s.lastHeartbeats.put(node, ctx.wallNow());
      case ADD_TO_PARTICIPANTS -> {
        addParticipant(s, node, ctx);
        // Java nodes queued right behind us to do the same: add them in this write, each as if
        // it had added itself (they asked a moment ago and wait for their turn, so they live).
        admitted = 0;
        if (turn != null) {
          for (NodeDescriptor joiner : turn.waitingJoiners()) {
            if (s.complete
                || s.participants.containsKey(joiner)
                || s.redundancyList.contains(joiner)
                || s.closed) {
              break; // a stale registration, or no seat left: the rest take their own turns
            }
            addParticipant(s, joiner, ctx);
            admitted++;
          }
        }
      }
      case ADD_TO_WAIT_LIST -> {
        s.redundancyList.remove(node);
        s.waitList.add(node);
        s.lastHeartbeats.put(node, ctx.wallNow());
      }
      case ADD_TO_REDUNDANCY_LIST -> {
        s.redundancyList.add(node);
        s.lastHeartbeats.put(node, ctx.wallNow());
      }
      case REMOVE_FROM_PARTICIPANTS -> {
        s.participants.remove(node);
        s.lastHeartbeats.remove(node);
        StateHolder.removeParticipantEpilogue(s, settings);
      }
      case REMOVE_FROM_WAIT_LIST -> {
        s.waitList.remove(node);
        s.lastHeartbeats.remove(node);
      }
      case REMOVE_FROM_REDUNDANCY_LIST -> {
        s.redundancyList.remove(node);
        s.lastHeartbeats.remove(node);
      }
      case MARK_RENDEZVOUS_COMPLETE -> markComplete(s);
      case MARK_RENDEZVOUS_CLOSED -> s.closed = true;
      default -> throw new IllegalStateException("not a state-changing action: " + action);
    }
    if (action == Ops.Action.ADD_TO_PARTICIPANTS && !wasComplete && s.complete && events != null) {
      recordComplete(s); // the participant that filled the round completed it
    }
    LOG.log(
        Level.DEBUG,
        "rendezvous ''{0}'' round {1}: node {2} applied {3}",
        settings.runId(),
        String.valueOf(s.round),
        node,
        action);
  }

  /** PyTorch's event of a sync that wrote, or failed to write, this node's changes. */
  private void recordSync(boolean hasSet) {
    if (!hasSet && metrics != null) {
      metrics.conflict();
    }
    if (events == null) {
      return;
    }
    String run = settings.runId();
    events.executor(
        "run",
        hasSet
            ? "The node '"
                + node
                + "' has successfully synced its local changes with other nodes in the rendezvous '"
                + run
                + "'."
            : "The node '"
                + node
                + "' has a stale state and failed to sync its local changes with other nodes in"
                + " the rendezvous '"
                + run
                + "'.",
        NodeState.RUNNING);
  }

  /**
   * PyTorch's events of an action about to be applied to {@code s}, in PyTorch's order: joining a
   * list also refreshes the heartbeat ({@link #apply} adds the completion a join may cause).
   */
  private void recordAction(Ops.Action action, MutableState s) {
    if (events == null) {
      return;
    }
    String me = "The node '" + node + "' ";
    String of = " of the rendezvous '" + settings.runId() + "'. Pending sync.";
    long round = s.round;
    switch (action) {
      case KEEP_ALIVE -> recordKeepAlive();
      case ADD_TO_PARTICIPANTS -> {
        executorEvent(
            "_add_to_participants", me + "added itself to the participants of round " + round + of);
        recordKeepAlive();
      }
      case ADD_TO_WAIT_LIST -> {
        executorEvent(
            "_add_to_wait_list", me + "added itself to the wait list of round " + (round + 1) + of);
        recordKeepAlive();
      }
      case ADD_TO_REDUNDANCY_LIST -> {
        executorEvent(
            "_add_to_redundancy_list",
            me + "added itself to the redundancy list of round " + (round + 1) + of);
        recordKeepAlive();
      }
      case REMOVE_FROM_PARTICIPANTS ->
          executorEvent(
              "_remove_from_participants",
              me + "removed itself from the participants of round " + round + of);
      case REMOVE_FROM_WAIT_LIST ->
          executorEvent(
              "_remove_from_wait_list",
              me + "removed itself from the wait list of round " + (round + 1) + of);
      // PyTorch's wording, typo included, so that one log reads the same for both.
      case REMOVE_FROM_REDUNDANCY_LIST ->
          executorEvent(
              "_remove_from_redundancy_list",
              me + "removed itself from the redunant list of round " + (round + 1) + of);
      case MARK_RENDEZVOUS_COMPLETE -> recordComplete(s);
      case MARK_RENDEZVOUS_CLOSED ->
          events.executor(
              "_mark_rendezvous_closed",
              me + "marked the rendezvous '" + settings.runId() + "' as closed. Pending sync.",
              NodeState.SUCCEEDED);
      default -> {}
    }
  }

  private void recordKeepAlive() {
    executorEvent(
        "_keep_alive",
        "The node '"
            + node
            + "' updated its keep-alive heartbeat time for the rendezvous '"
            + settings.runId()
            + "'. Pending sync.");
  }

  private void recordComplete(MutableState s) {
    events.executor(
        "_mark_rendezvous_complete",
        "The node '"
            + node
            + "' marked round "
            + s.round
            + " of the rendezvous '"
            + settings.runId()
            + "' as complete. Pending sync.",
        NodeState.SUCCEEDED);
  }

  private void executorEvent(String method, String message) {
    events.executor(method, message, NodeState.RUNNING);
  }

  private void addParticipant(MutableState s, NodeDescriptor n, Ops.Context ctx) {
    s.waitList.remove(n);
    s.participants.put(n, 0);
    s.lastHeartbeats.put(n, ctx.wallNow());
    if (s.participants.size() == settings.minNodes()) {
      s.deadline = ctx.wallNow().plus(settings.lastCallTimeout());
    }
    if (s.participants.size() == settings.maxNodes()) {
      markComplete(s);
    }
  }

  private void markComplete(MutableState s) {
    s.complete = true;
    s.deadline = null;
    List<NodeDescriptor> order = new ArrayList<>(s.participants.keySet());
    order.sort(
        settings.naturalRanks() ? NodeDescriptor.NATURAL_ORDER : NodeDescriptor.PYTORCH_ORDER);
    for (int rank = 0; rank < order.size(); rank++) {
      s.participants.put(order.get(rank), rank);
    }
  }
}
