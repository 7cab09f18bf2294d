package org.rdzv.dynamic;

import java.time.Instant;

/**
 * The rendezvous operations of PyTorch's dynamic rendezvous, as pure functions: each looks at the
 * state and the time and names the next {@link Action}. {@link Executor} applies the action.
 */
final class Ops {
  private Ops() {}

  /** What an operation asks for next. Never serialized, so the order carries no meaning. */
  enum Action {
    KEEP_ALIVE,
    ADD_TO_PARTICIPANTS,
    ADD_TO_WAIT_LIST,
    ADD_TO_REDUNDANCY_LIST,
    REMOVE_FROM_PARTICIPANTS,
    REMOVE_FROM_WAIT_LIST,
    REMOVE_FROM_REDUNDANCY_LIST,
    MARK_RENDEZVOUS_COMPLETE,
    MARK_RENDEZVOUS_CLOSED,
    SYNC,
    ERROR_CLOSED,
    ERROR_TIMEOUT,
    ERROR_GRACEFUL_EXIT,
    FINISH
  }

  /**
   * What an operation decides from.
   *
   * @param node this node
   * @param state the state as last synced
   * @param settings this node's settings
   * @param dialect the dialect in force (that of the stored state, else the configured one)
   * @param wallNow the current UTC time
   * @param nanoNow the current monotonic time
   */
  record Context(
      NodeDescriptor node,
      MutableState state,
      RendezvousSettings settings,
      StateDialect dialect,
      Instant wallNow,
      long nanoNow) {}

  /** One operation: decides the next action given the context and its monotonic deadline. */
  @FunctionalInterface
  interface Op {
    Action next(Context ctx, long deadlineNanos);
  }

  /** The rollback window after a join deadline in which a node still removes itself. */
  static final long ROLLBACK_NANOS = 5_000_000_000L;

  static boolean shouldKeepAlive(Context ctx) {
    Instant last = ctx.state().lastHeartbeats.get(ctx.node());
    return last != null && !last.isAfter(ctx.wallNow().minus(ctx.settings().keepAliveInterval()));
  }

  private static boolean past(Context ctx, long deadlineNanos) {
    return ctx.nanoNow() - deadlineNanos > 0;
  }

  static final Op EXIT =
      (ctx, deadline) -> {
        if (ctx.state().participants.containsKey(ctx.node())) {
          return past(ctx, deadline) ? Action.ERROR_TIMEOUT : Action.REMOVE_FROM_PARTICIPANTS;
        }
        return Action.FINISH;
      };

  /**
   * Leaving without closing (not in PyTorch): remove this node from whichever collection holds it.
   * Used by {@link DynamicRendezvousHandler#leave()}.
   */
  static final Op LEAVE =
      (ctx, deadline) -> {
        MutableState s = ctx.state();
        NodeDescriptor me = ctx.node();
        if (!s.participants.containsKey(me)
            && !s.waitList.contains(me)
            && !s.redundancyList.contains(me)) {
          return Action.FINISH;
        }
        if (past(ctx, deadline)) {
          return Action.ERROR_TIMEOUT;
        }
        if (s.participants.containsKey(me)) {
          return Action.REMOVE_FROM_PARTICIPANTS;
        }
        return s.waitList.contains(me)
            ? Action.REMOVE_FROM_WAIT_LIST
            : Action.REMOVE_FROM_REDUNDANCY_LIST;
      };

  static final Op JOIN =
      (ctx, deadline) -> {
        MutableState s = ctx.state();
        NodeDescriptor me = ctx.node();
        RendezvousSettings settings = ctx.settings();
        boolean v2 = ctx.dialect().redundancyList();
        boolean redundant = v2 && s.redundancyList.contains(me);
        if (s.closed) {
          return redundant ? Action.ERROR_GRACEFUL_EXIT : Action.ERROR_CLOSED;
        }
        if (redundant) {
          // Parked: no timeout applies while the round is full.
          if (s.participants.size() == settings.maxNodes()) {
            return shouldKeepAlive(ctx) ? Action.KEEP_ALIVE : Action.SYNC;
          }
          return Action.REMOVE_FROM_REDUNDANCY_LIST;
        }
        boolean participant = s.participants.containsKey(me);
        if (s.complete && participant) {
          return Action.FINISH;
        }
        if (past(ctx, deadline)) {
          if (ctx.nanoNow() - (deadline + ROLLBACK_NANOS) <= 0) {
            if (participant) {
              return Action.REMOVE_FROM_PARTICIPANTS;
            }
            if (s.waitList.contains(me)) {
              return Action.REMOVE_FROM_WAIT_LIST;
            }
          }
          return Action.ERROR_TIMEOUT;
        }
        if (s.complete) {
          if (s.participants.size() < settings.maxNodes()) {
            if (!s.waitList.contains(me)) {
              return Action.ADD_TO_WAIT_LIST;
            }
          } else if (v2 && !s.redundancyList.contains(me) && !s.waitList.contains(me)) {
            return Action.ADD_TO_REDUNDANCY_LIST;
          }
        } else if (participant) {
          // 2.x's guard (a missing deadline) also protects 1.13 states, where PyTorch would crash.
          int n = s.participants.size();
          if (n >= settings.minNodes()
              && n <= settings.maxNodes()
              && s.deadline != null
              && s.deadline.isBefore(ctx.wallNow())) {
            return Action.MARK_RENDEZVOUS_COMPLETE;
          }
        } else {
          return Action.ADD_TO_PARTICIPANTS;
        }
        return shouldKeepAlive(ctx) ? Action.KEEP_ALIVE : Action.SYNC;
      };

  static final Op CLOSE =
      (ctx, deadline) -> {
        if (ctx.state().closed) {
          return Action.FINISH;
        }
        return past(ctx, deadline) ? Action.ERROR_TIMEOUT : Action.MARK_RENDEZVOUS_CLOSED;
      };

  static final Op KEEP_ALIVE =
      (ctx, deadline) -> {
        if (shouldKeepAlive(ctx)) {
          return past(ctx, deadline) ? Action.ERROR_TIMEOUT : Action.KEEP_ALIVE;
        }
        return Action.FINISH;
      };
}
