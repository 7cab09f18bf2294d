package org.rdzv.dynamic;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;

/**
 * The rendezvous state as one node holds it between syncs: PyTorch's {@code _RendezvousState}.
 * Mutable and confined to the thread that runs an operation (the handler's lock guards it).
 */
final class MutableState {
  long round;
  boolean complete;

  /** When a round with enough participants completes; {@code null} while it has too few. */
  Instant deadline;

  boolean closed;
  final LinkedHashMap<NodeDescriptor, Integer> participants = new LinkedHashMap<>();
  final LinkedHashSet<NodeDescriptor> waitList = new LinkedHashSet<>();
  final LinkedHashSet<NodeDescriptor> redundancyList = new LinkedHashSet<>();
  final LinkedHashMap<NodeDescriptor, Instant> lastHeartbeats = new LinkedHashMap<>();

  /** Attributes this version does not know, written back unchanged. */
  final LinkedHashMap<String, Object> extras = new LinkedHashMap<>();

  /**
   * The dialect the stored state was written in; {@code null} when it gave no hint. A 2.x state
   * without timestamps reads as 2.0-2.5 without proving it ({@link #dialectProven}).
   */
  StateDialect dialect;

  /** Whether the state's nodes or timestamps prove {@link #dialect}. */
  boolean dialectProven;

  /**
   * Whether the stored state is of a 2.x dialect: it has a {@code redundancy_list} (PyTorch 2.3+
   * always writes one, 1.13 never does) or {@code addr} nodes. Known even where {@link #dialect} is
   * not (a state without nodes or timestamps); {@code null} when no state was read.
   */
  Boolean twoX;

  MutableState copy() {
    MutableState c = new MutableState();
    c.round = round;
    c.complete = complete;
    c.deadline = deadline;
    c.closed = closed;
    c.participants.putAll(participants);
    c.waitList.addAll(waitList);
    c.redundancyList.addAll(redundancyList);
    c.lastHeartbeats.putAll(lastHeartbeats);
    c.extras.putAll(extras);
    c.dialect = dialect;
    c.twoX = twoX;
    c.dialectProven = dialectProven;
    return c;
  }

  StateSnapshot snapshot() {
    return new StateSnapshot(
        round,
        complete,
        deadline,
        closed,
        Map.copyOf(participants),
        java.util.Set.copyOf(waitList),
        java.util.Set.copyOf(redundancyList),
        Map.copyOf(lastHeartbeats),
        dialect);
  }
}
