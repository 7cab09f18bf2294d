package org.rdzv.dynamic;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.rdzv.api.RendezvousStatus;
import org.rdzv.api.internal.Json;

/**
 * A dynamic rendezvous state as {@code rdzv status} shows it: round, complete, closed, dialect, the
 * node range and deadlines, the participants by rank (ranks shown as {@code -} until the round
 * completes: PyTorch stores 0 for each meanwhile) with heartbeat ages, the wait and redundancy
 * lists. The node range and join deadlines come from the nodes' notes ({@link NodeNote}); a
 * rendezvous of PyTorch nodes only has none, and shows {@code ?} and {@code none}.
 */
record SnapshotStatus(String runId, StateSnapshot state, Map<NodeDescriptor, NodeNote> notes)
    implements RendezvousStatus {

  SnapshotStatus(String runId, StateSnapshot state) {
    this(runId, state, Map.of());
  }

  @Override
  public List<String> lines(Instant now) {
    StateSnapshot s = state;
    Integer min = agreed(true);
    Integer max = agreed(false);
    Instant joinDeadline = joinDeadline();
    List<String> lines = new ArrayList<>();
    StringBuilder head =
        new StringBuilder("run_id=")
            .append(runId)
            .append(" round=")
            .append(s.round())
            .append(" complete=")
            .append(s.complete())
            .append(" closed=")
            .append(s.closed())
            .append(" dialect=")
            .append(s.dialect() == null ? "unknown" : s.dialect().label())
            .append(" min=")
            .append(min == null ? "?" : min)
            .append(" max=")
            .append(max == null ? "?" : max)
            .append(" deadline=")
            .append(s.deadline() == null ? "none" : s.deadline())
            .append(" last_call_in=")
            .append(lastCallPending() ? seconds(Duration.between(now, s.deadline())) : "-");
    if (!s.complete() && min != null && s.participants().size() < min) {
      head.append(" needed=").append(min - s.participants().size());
    }
    head.append(" join_deadline=")
        .append(joinDeadline == null ? "none" : joinDeadline)
        .append(" join_deadline_in=")
        .append(joinDeadline == null ? "-" : seconds(Duration.between(now, joinDeadline)))
        .append(" participants=")
        .append(s.participants().size())
        .append(" waiting=")
        .append(s.waitList().size())
        .append(" redundant=")
        .append(s.redundancyList().size());
    lines.add(head.toString());
    for (var e : byRank(s.participants())) {
      lines.add(
          "  participant rank="
              + (s.complete() ? e.getValue().toString() : "-")
              + " node="
              + e.getKey()
              + " heartbeat_age="
              + age(e.getKey(), now)
              + joinIn(e.getKey(), !s.complete(), now));
    }
    for (NodeDescriptor n : sorted(s.waitList())) {
      lines.add("  waiting node=" + n + " heartbeat_age=" + age(n, now) + joinIn(n, true, now));
    }
    for (NodeDescriptor n : sorted(s.redundancyList())) {
      lines.add("  redundant node=" + n + " heartbeat_age=" + age(n, now));
    }
    return lines;
  }

  @Override
  public String toJson(Instant now) {
    StateSnapshot s = state;
    Integer min = agreed(true);
    Integer max = agreed(false);
    Instant joinDeadline = joinDeadline();
    StringBuilder b = new StringBuilder();
    b.append("{\"run_id\": ")
        .append(Json.quote(runId))
        .append(", \"round\": ")
        .append(s.round())
        .append(", \"complete\": ")
        .append(s.complete())
        .append(", \"closed\": ")
        .append(s.closed())
        .append(", \"dialect\": ")
        .append(s.dialect() == null ? "null" : Json.quote(s.dialect().label()))
        .append(", \"deadline\": ")
        .append(s.deadline() == null ? "null" : Json.quote(s.deadline().toString()))
        .append(", \"last_call_in_seconds\": ")
        .append(lastCallPending() ? secondsJson(Duration.between(now, s.deadline())) : "null")
        .append(", \"min_nodes\": ")
        .append(min)
        .append(", \"max_nodes\": ")
        .append(max)
        .append(", \"join_deadline\": ")
        .append(joinDeadline == null ? "null" : Json.quote(joinDeadline.toString()))
        .append(", \"join_deadline_in_seconds\": ")
        .append(joinDeadline == null ? "null" : secondsJson(Duration.between(now, joinDeadline)))
        .append(", \"participants\": [");
    String sep = "";
    for (var e : byRank(s.participants())) {
      b.append(sep)
          .append("{\"node\": ")
          .append(Json.quote(e.getKey().toString()))
          .append(", \"rank\": ")
          .append(e.getValue())
          .append(", \"assigned\": ")
          .append(s.complete())
          .append(", \"heartbeat_age_seconds\": ")
          .append(ageSeconds(e.getKey(), now))
          .append(", \"join_deadline_in_seconds\": ")
          .append(joinInJson(e.getKey(), !s.complete(), now))
          .append('}');
      sep = ", ";
    }
    b.append("], \"wait_list\": ").append(nodes(s.waitList(), now));
    b.append(", \"redundancy_list\": ").append(nodes(s.redundancyList(), now)).append('}');
    return b.toString();
  }

  /** Whether the last call runs: enough participants, not yet complete. */
  private boolean lastCallPending() {
    return !state.complete() && state.deadline() != null;
  }

  /**
   * The node range the nodes of this state announced ({@code min} or {@code max}): the value most
   * of them give, or {@code null} when none announced one.
   */
  private Integer agreed(boolean min) {
    Map<Integer, Integer> votes = new HashMap<>();
    for (NodeDescriptor n : state.nodes()) {
      NodeNote note = notes.get(n);
      if (note != null) {
        votes.merge(min ? note.minNodes() : note.maxNodes(), 1, Integer::sum);
      }
    }
    return votes.entrySet().stream()
        .max(
            Map.Entry.<Integer, Integer>comparingByValue()
                .thenComparing(Map.Entry.comparingByKey()))
        .map(Map.Entry::getKey)
        .orElse(null);
  }

  /**
   * The earliest join deadline of the nodes still joining (the participants of a round that is not
   * complete, and the waiting nodes): when the first of them gives up.
   */
  private Instant joinDeadline() {
    Instant earliest = null;
    for (NodeDescriptor n : joining()) {
      NodeNote note = notes.get(n);
      if (note != null && (earliest == null || note.joinDeadline().isBefore(earliest))) {
        earliest = note.joinDeadline();
      }
    }
    return earliest;
  }

  private Set<NodeDescriptor> joining() {
    Set<NodeDescriptor> joining = new java.util.LinkedHashSet<>(state.waitList());
    if (!state.complete()) {
      joining.addAll(state.participants().keySet());
    }
    return joining;
  }

  private String joinIn(NodeDescriptor n, boolean joining, Instant now) {
    NodeNote note = notes.get(n);
    return joining && note != null
        ? " join_deadline_in=" + seconds(Duration.between(now, note.joinDeadline()))
        : "";
  }

  private String joinInJson(NodeDescriptor n, boolean joining, Instant now) {
    NodeNote note = notes.get(n);
    return joining && note != null
        ? secondsJson(Duration.between(now, note.joinDeadline()))
        : "null";
  }

  private static List<Map.Entry<NodeDescriptor, Integer>> byRank(
      Map<NodeDescriptor, Integer> participants) {
    List<Map.Entry<NodeDescriptor, Integer>> list = new ArrayList<>(participants.entrySet());
    list.sort(
        Map.Entry.<NodeDescriptor, Integer>comparingByValue()
            .thenComparing(Map.Entry.comparingByKey(NodeDescriptor.PYTORCH_ORDER)));
    return list;
  }

  private static List<NodeDescriptor> sorted(Set<NodeDescriptor> nodes) {
    List<NodeDescriptor> list = new ArrayList<>(nodes);
    list.sort(NodeDescriptor.PYTORCH_ORDER);
    return list;
  }

  private static String seconds(Duration d) {
    return String.format(Locale.ROOT, "%.1fs", d.toMillis() / 1000.0);
  }

  private static String secondsJson(Duration d) {
    return String.format(Locale.ROOT, "%.3f", d.toMillis() / 1000.0);
  }

  private String age(NodeDescriptor node, Instant now) {
    Instant last = state.lastHeartbeats().get(node);
    return last == null ? "none" : seconds(Duration.between(last, now));
  }

  private String nodes(Set<NodeDescriptor> set, Instant now) {
    StringBuilder b = new StringBuilder("[");
    String sep = "";
    for (NodeDescriptor n : sorted(set)) {
      b.append(sep)
          .append("{\"node\": ")
          .append(Json.quote(n.toString()))
          .append(", \"heartbeat_age_seconds\": ")
          .append(ageSeconds(n, now))
          .append('}');
      sep = ", ";
    }
    return b.append(']').toString();
  }

  private String ageSeconds(NodeDescriptor n, Instant now) {
    Instant last = state.lastHeartbeats().get(n);
    return last == null ? "null" : secondsJson(Duration.between(last, now));
  }
}
