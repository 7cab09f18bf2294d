package org.rdzv.dynamic;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.rdzv.api.RendezvousStatus;
import org.rdzv.api.internal.Json;

/**
 * A dynamic rendezvous state as {@code rdzv status} shows it: round, complete, closed, dialect,
 * deadline, the participants by rank with heartbeat ages, the wait and redundancy lists.
 */
record SnapshotStatus(String runId, StateSnapshot state) implements RendezvousStatus {

  @Override
  public List<String> lines(Instant now) {
    StateSnapshot s = state;
    List<String> lines = new ArrayList<>();
    lines.add(
        "run_id="
            + runId
            + " round="
            + s.round()
            + " complete="
            + s.complete()
            + " closed="
            + s.closed()
            + " dialect="
            + (s.dialect() == null ? "unknown" : s.dialect().label())
            + " deadline="
            + (s.deadline() == null ? "none" : s.deadline())
            + " participants="
            + s.participants().size()
            + " waiting="
            + s.waitList().size()
            + " redundant="
            + s.redundancyList().size());
    for (var e : byRank(s.participants())) {
      lines.add(
          "  participant rank="
              + e.getValue()
              + " node="
              + e.getKey()
              + " heartbeat_age="
              + age(e.getKey(), now));
    }
    for (NodeDescriptor n : sorted(s.waitList())) {
      lines.add("  waiting node=" + n + " heartbeat_age=" + age(n, now));
    }
    for (NodeDescriptor n : sorted(s.redundancyList())) {
      lines.add("  redundant node=" + n + " heartbeat_age=" + age(n, now));
    }
    return lines;
  }

  @Override
  public String toJson(Instant now) {
    StateSnapshot s = state;
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
        .append(", \"participants\": [");
    String sep = "";
    for (var e : byRank(s.participants())) {
      b.append(sep)
          .append("{\"node\": ")
          .append(Json.quote(e.getKey().toString()))
          .append(", \"rank\": ")
          .append(e.getValue())
          .append(", \"heartbeat_age_seconds\": ")
          .append(ageSeconds(e.getKey(), now))
          .append('}');
      sep = ", ";
    }
    b.append("], \"wait_list\": ").append(nodes(s.waitList(), now));
    b.append(", \"redundancy_list\": ").append(nodes(s.redundancyList(), now)).append('}');
    return b.toString();
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

  private String age(NodeDescriptor node, Instant now) {
    Instant last = state.lastHeartbeats().get(node);
    if (last == null) {
      return "none";
    }
    return String.format(Locale.ROOT, "%.1fs", Duration.between(last, now).toMillis() / 1000.0);
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
    return last == null
        ? "null"
        : String.format(Locale.ROOT, "%.3f", Duration.between(last, now).toMillis() / 1000.0);
  }
}
