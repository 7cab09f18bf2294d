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

  /** The dialect the stored state was written in; {@code null} when it gave no hint. */
  StateDialect dialect;

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
