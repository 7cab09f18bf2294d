package org.rdzv.dynamic;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;

/**
 * What a joining node says while its round forms, instead of silence until the join timeout: a line
 * every {@link #INTERVAL} (joined, min and max, the first few nodes present and how many, the time
 * to the last call and to the join timeout), and the detail a timeout error carries. Pure: the
 * executor feeds it the context it decided on.
 */
final class JoinProgress {
  /** How often a waiting node reports. */
  static final Duration INTERVAL = Duration.ofSeconds(5);

  /** How many nodes a line names before it counts the rest. */
  static final int NAMED = 5;

  private long nextReport;

  /** Reports start {@link #INTERVAL} after {@code startNanos}: a quick round says nothing. */
  JoinProgress(long startNanos) {
    this.nextReport = startNanos + INTERVAL.toNanos();
  }

  /** How long until the next report is due (not negative). */
  long nanosToNext(long nowNanos) {
    return Math.max(0, nextReport - nowNanos);
  }

  /** The line to log now, or {@code null} if the last one is too recent. */
  String due(Ops.Context ctx, long deadlineNanos) {
    if (ctx.nanoNow() - nextReport < 0) {
      return null;
    }
    nextReport = ctx.nanoNow() + INTERVAL.toNanos();
    return line(ctx, deadlineNanos);
  }

  /**
   * {@code rendezvous 'obs' round 0: 1 joined (min 2, max 4): h_1_0; last call after 1 more node;
   * join timeout in 41.2 s}, or what this node waits for when the round is not its own.
   */
  static String line(Ops.Context ctx, long deadlineNanos) {
    MutableState s = ctx.state();
    RendezvousSettings settings = ctx.settings();
    StringBuilder b =
        new StringBuilder("rendezvous '")
            .append(settings.runId())
            .append("' round ")
            .append(s.round)
            .append(": ");
    if (s.complete && !s.participants.containsKey(ctx.node())) {
      b.append("complete with ")
          .append(nodes(s.participants.size()))
          .append(" (max ")
          .append(settings.maxNodes())
          .append("); this node ")
          .append(
              s.redundancyList.contains(ctx.node())
                  ? "is a spare (the round is full)"
                  : "waits for the next round");
      if (!s.waitList.isEmpty()) {
        b.append(", ").append(nodes(s.waitList.size())).append(" waiting");
      }
    } else {
      b.append(s.participants.size())
          .append(" joined (min ")
          .append(settings.minNodes())
          .append(", max ")
          .append(settings.maxNodes())
          .append(")");
      if (!s.participants.isEmpty()) {
        b.append(": ").append(names(s.participants.keySet()));
      }
      b.append("; ");
      int missing = settings.minNodes() - s.participants.size();
      if (s.complete) {
        b.append("complete");
      } else if (s.deadline != null) {
        b.append("last call in ").append(seconds(Duration.between(ctx.wallNow(), s.deadline)));
      } else if (missing > 0) {
        b.append("last call after ")
            .append(missing)
            .append(missing == 1 ? " more node" : " more nodes");
      } else {
        b.append("last call pending");
      }
      if (!s.waitList.isEmpty()) {
        b.append("; ").append(nodes(s.waitList.size())).append(" waiting for the next round");
      }
    }
    b.append("; join timeout in ").append(seconds(Duration.ofNanos(deadlineNanos - ctx.nanoNow())));
    return b.toString();
  }

  /** What the round looked like at the last wait: a timeout reports it (not its own rollback). */
  private record View(
      long round, boolean complete, List<NodeDescriptor> participants, int waiting, boolean mine) {}

  private View last;

  /** Remembers the round as this wait sees it, for {@link #timeoutDetail}. */
  void observe(Ops.Context ctx) {
    MutableState s = ctx.state();
    last =
        new View(
            s.round,
            s.complete,
            List.copyOf(s.participants.keySet()),
            s.waitList.size(),
            s.participants.containsKey(ctx.node()));
  }

  /**
   * What a join timeout error adds to PyTorch's sentence: who had joined at the last wait, and how
   * many were expected, e.g. {@code Round 0 had 1 of the 2 to 4 nodes expected (min_nodes 2,
   * max_nodes 4): h_1_0.}
   */
  String timeoutDetail(Ops.Context ctx) {
    if (last == null) {
      observe(ctx);
    }
    View v = last;
    RendezvousSettings settings = ctx.settings();
    String expected =
        settings.minNodes() == settings.maxNodes()
            ? "the " + nodes(settings.minNodes()) + " expected"
            : "the " + settings.minNodes() + " to " + settings.maxNodes() + " nodes expected";
    StringBuilder b = new StringBuilder();
    if (v.complete() && !v.mine()) {
      b.append("Round ")
          .append(v.round())
          .append(" completed with ")
          .append(nodes(v.participants().size()))
          .append(" without this node (max_nodes ")
          .append(settings.maxNodes())
          .append(")");
    } else {
      b.append("Round ")
          .append(v.round())
          .append(" had ")
          .append(v.participants().size())
          .append(" of ")
          .append(expected)
          .append(" (min_nodes ")
          .append(settings.minNodes())
          .append(", max_nodes ")
          .append(settings.maxNodes())
          .append(")");
      if (!v.participants().isEmpty()) {
        b.append(": ").append(names(v.participants()));
      }
    }
    if (v.waiting() > 0) {
      b.append("; ").append(nodes(v.waiting())).append(" waited for the next round");
    }
    return b.append('.').toString();
  }

  /** The first {@link #NAMED} nodes in natural order, then how many more. */
  static String names(Collection<NodeDescriptor> nodes) {
    List<NodeDescriptor> sorted = new ArrayList<>(nodes);
    sorted.sort(NodeDescriptor.NATURAL_ORDER);
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < Math.min(NAMED, sorted.size()); i++) {
      if (i > 0) {
        b.append(", ");
      }
      b.append(sorted.get(i));
    }
    if (sorted.size() > NAMED) {
      b.append(" and ").append(sorted.size() - NAMED).append(" more");
    }
    return b.toString();
  }

  private static String nodes(int n) {
    return n + (n == 1 ? " node" : " nodes");
  }

  static String seconds(Duration d) {
    return String.format(Locale.ROOT, "%.1f s", Math.max(0, d.toMillis()) / 1000.0);
  }
}
