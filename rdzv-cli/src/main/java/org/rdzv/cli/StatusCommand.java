package org.rdzv.cli;

import java.io.PrintWriter;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.dynamic.C10dRendezvous;
import org.rdzv.dynamic.NodeDescriptor;
import org.rdzv.dynamic.StateSnapshot;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code rdzv status}: shows a dynamic rendezvous (c10d, etcd-v2, etcd-v3) — round, complete,
 * closed, participants with ranks and heartbeat ages, wait and redundancy lists — also one that
 * PyTorch nodes created, without joining it or writing anything (not even the "no state" sentinel
 * PyTorch's constructor writes); for the legacy {@code etcd} backend, its JSON state as stored.
 */
@Command(
    name = "status",
    mixinStandardHelpOptions = true,
    description = {
      "Show a rendezvous without joining or changing it.",
      "Reads the state (also one PyTorch nodes created) as a client; writes nothing.",
      "Backends: c10d, etcd-v2, etcd-v3 (decoded), etcd (its JSON as stored)."
    })
public final class StatusCommand implements Callable<Integer> {

  @Spec CommandSpec spec;

  @Mixin RendezvousOptions rendezvous;

  @Option(names = "--json", description = "Print the status as one JSON object.")
  boolean json;

  @Override
  public Integer call() {
    Quiet.unlessVerbose(spec);
    RendezvousParameters params = rendezvous.toParameters("c10d", "none");
    PrintWriter out = spec.commandLine().getOut();
    Optional<StateSnapshot> state;
    switch (params.backend()) {
      case "c10d" -> state = C10dRendezvous.readState(params);
      case "etcd-v2", "etcd-v3" -> state = org.rdzv.etcd.EtcdRendezvous.readState(params);
      case "etcd" -> {
        // The legacy etcd rendezvous keeps JSON, not the dynamic state: show it as stored.
        Optional<String> legacy = org.rdzv.etcd.EtcdRendezvous.legacyState(params);
        out.println(
            json
                ? "{\"run_id\": "
                    + Json.string(params.runId())
                    + ", \"state\": "
                    + legacy.orElse("null")
                    + "}"
                : "run_id=" + params.runId() + " state=" + legacy.orElse("none"));
        out.flush();
        return ExitCode.OK.code();
      }
      default ->
          throw new IllegalArgumentException(
              "--rdzv-backend: status reads c10d, etcd-v2, etcd-v3 and etcd rendezvous, not '"
                  + params.backend()
                  + "'.");
    }
    Instant now = Instant.now();
    if (json) {
      out.println(
          state
              .map(s -> toJson(params, s, now))
              .orElse("{\"run_id\": " + Json.string(params.runId()) + ", \"state\": null}"));
    } else if (state.isEmpty()) {
      out.println("run_id=" + params.runId() + " state=none");
    } else {
      StateSnapshot s = state.get();
      out.println(
          "run_id="
              + params.runId()
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
        out.println(
            "  participant rank="
                + e.getValue()
                + " node="
                + e.getKey()
                + " heartbeat_age="
                + age(s, e.getKey(), now));
      }
      for (NodeDescriptor n : sorted(s.waitList())) {
        out.println("  waiting node=" + n + " heartbeat_age=" + age(s, n, now));
      }
      for (NodeDescriptor n : sorted(s.redundancyList())) {
        out.println("  redundant node=" + n + " heartbeat_age=" + age(s, n, now));
      }
    }
    out.flush();
    return ExitCode.OK.code();
  }

  private static List<Map.Entry<NodeDescriptor, Integer>> byRank(
      Map<NodeDescriptor, Integer> participants) {
    List<Map.Entry<NodeDescriptor, Integer>> list = new ArrayList<>(participants.entrySet());
    list.sort(
        Map.Entry.<NodeDescriptor, Integer>comparingByValue()
            .thenComparing(Map.Entry.comparingByKey(NodeDescriptor.PYTORCH_ORDER)));
    return list;
  }

  private static List<NodeDescriptor> sorted(java.util.Set<NodeDescriptor> nodes) {
    List<NodeDescriptor> list = new ArrayList<>(nodes);
    list.sort(NodeDescriptor.PYTORCH_ORDER);
    return list;
  }

  private static String age(StateSnapshot s, NodeDescriptor node, Instant now) {
    Instant last = s.lastHeartbeats().get(node);
    if (last == null) {
      return "none";
    }
    return String.format(
        java.util.Locale.ROOT, "%.1fs", Duration.between(last, now).toMillis() / 1000.0);
  }

  private static String toJson(RendezvousParameters params, StateSnapshot s, Instant now) {
    StringBuilder b = new StringBuilder();
    b.append("{\"run_id\": ")
        .append(Json.string(params.runId()))
        .append(", \"round\": ")
        .append(s.round())
        .append(", \"complete\": ")
        .append(s.complete())
        .append(", \"closed\": ")
        .append(s.closed())
        .append(", \"dialect\": ")
        .append(s.dialect() == null ? "null" : Json.string(s.dialect().label()))
        .append(", \"deadline\": ")
        .append(s.deadline() == null ? "null" : Json.string(s.deadline().toString()))
        .append(", \"participants\": [");
    String sep = "";
    for (var e : byRank(s.participants())) {
      b.append(sep)
          .append("{\"node\": ")
          .append(Json.string(e.getKey().toString()))
          .append(", \"rank\": ")
          .append(e.getValue())
          .append(", \"heartbeat_age_seconds\": ")
          .append(ageSeconds(s, e.getKey(), now))
          .append('}');
      sep = ", ";
    }
    b.append("], \"wait_list\": ").append(nodes(s, s.waitList(), now));
    b.append(", \"redundancy_list\": ").append(nodes(s, s.redundancyList(), now)).append('}');
    return b.toString();
  }

  private static String nodes(StateSnapshot s, java.util.Set<NodeDescriptor> set, Instant now) {
    StringBuilder b = new StringBuilder("[");
    String sep = "";
    for (NodeDescriptor n : sorted(set)) {
      b.append(sep)
          .append("{\"node\": ")
          .append(Json.string(n.toString()))
          .append(", \"heartbeat_age_seconds\": ")
          .append(ageSeconds(s, n, now))
          .append('}');
      sep = ", ";
    }
    return b.append(']').toString();
  }

  private static String ageSeconds(StateSnapshot s, NodeDescriptor n, Instant now) {
    Instant last = s.lastHeartbeats().get(n);
    return last == null
        ? "null"
        : String.format(
            java.util.Locale.ROOT, "%.3f", Duration.between(last, now).toMillis() / 1000.0);
  }
}
