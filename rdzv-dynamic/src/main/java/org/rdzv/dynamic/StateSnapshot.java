package org.rdzv.dynamic;

import java.time.Instant;
import java.util.Map;
import java.util.Set;
import org.rdzv.api.RendezvousStatus;

/**
 * An immutable copy of a dynamic rendezvous state, as decoded from the shared store.
 *
 * @param round the current round, from 0
 * @param complete whether the current round has been decided (ranks assigned)
 * @param deadline when a round with enough participants completes, or {@code null}
 * @param closed whether the rendezvous is closed for good
 * @param participants the members of the round and their ranks (all 0 before completion, when they
 *     mean nothing)
 * @param waitList nodes waiting for the next round; an agent re-rendezvouses when non-empty
 * @param redundancyList spare nodes beyond {@code max_nodes} (PyTorch ≥ 2.3), else empty
 * @param lastHeartbeats each node's last keep-alive (UTC)
 * @param dialect the encoding found, or {@code null} when the state gave no hint
 */
public record StateSnapshot(
    long round,
    boolean complete,
    Instant deadline,
    boolean closed,
    Map<NodeDescriptor, Integer> participants,
    Set<NodeDescriptor> waitList,
    Set<NodeDescriptor> redundancyList,
    Map<NodeDescriptor, Instant> lastHeartbeats,
    StateDialect dialect) {

  /**
   * Decodes a pickled {@code _RendezvousState} (the bytes under the base64 envelope).
   *
   * @throws org.rdzv.api.RendezvousStateException if the bytes are not such a state
   */
  public static StateSnapshot decode(byte[] pickle) {
    return StateCodec.decode(pickle).snapshot();
  }

  /**
   * This state as {@code rdzv status} shows it: {@code run_id=<id> round=N complete=... closed=...
   * dialect=... deadline=... participants=N waiting=N redundant=N}, then one line per participant
   * (by rank), waiting and redundant node with its heartbeat age; or the same as one JSON object.
   */
  public RendezvousStatus toStatus(String runId) {
    return toStatus(runId, Map.of());
  }

  /**
   * {@link #toStatus(String)} with what the nodes' notes add: the node range ({@code min=}, {@code
   * max=}) and, while nodes join, their join deadlines.
   */
  public RendezvousStatus toStatus(String runId, Map<NodeDescriptor, NodeNote> notes) {
    return new SnapshotStatus(runId, this, Map.copyOf(notes));
  }

  /** Every node the state names: participants, then the wait and redundancy lists. */
  public Set<NodeDescriptor> nodes() {
    Set<NodeDescriptor> all = new java.util.LinkedHashSet<>(participants.keySet());
    all.addAll(waitList);
    all.addAll(redundancyList);
    return all;
  }
}
