package org.rdzv.dynamic;

import java.time.Duration;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * What an rdzv node tells status tools when it starts to join (not in PyTorch's state, which has
 * neither the node range nor the join timeout): written by {@link RendezvousBackend#publishNote}
 * under rdzv's own key {@code node/<E(node)>} ({@link RendezvousKeys.Own#NODE}), read by {@code
 * rdzv status}. Its text is one line, {@code min_nodes=2 max_nodes=4 join_timeout=600
 * last_call_timeout=30 join_deadline=2026-01-02T03:04:05Z}.
 *
 * @param minNodes the node's {@code min_nodes}
 * @param maxNodes the node's {@code max_nodes}
 * @param joinTimeout its {@code join_timeout}
 * @param lastCallTimeout its {@code last_call_timeout}
 * @param joinDeadline when its current join times out (UTC)
 */
public record NodeNote(
    int minNodes,
    int maxNodes,
    Duration joinTimeout,
    Duration lastCallTimeout,
    Instant joinDeadline) {

  /** The note of a node that starts to join now. */
  static NodeNote joining(RendezvousSettings settings, Instant now) {
    return new NodeNote(
        settings.minNodes(),
        settings.maxNodes(),
        settings.joinTimeout(),
        settings.lastCallTimeout(),
        now.plus(settings.joinTimeout()));
  }

  /** The stored text. */
  public String encode() {
    return "min_nodes="
        + minNodes
        + " max_nodes="
        + maxNodes
        + " join_timeout="
        + joinTimeout.toSeconds()
        + " last_call_timeout="
        + lastCallTimeout.toSeconds()
        + " join_deadline="
        + joinDeadline;
  }

  /** Parses {@link #encode()}'s text; empty for anything else (a note is only a hint). */
  public static Optional<NodeNote> parse(String text) {
    Map<String, String> fields = new HashMap<>();
    for (String pair : text.strip().split(" ")) {
      int eq = pair.indexOf('=');
      if (eq > 0) {
        fields.put(pair.substring(0, eq), pair.substring(eq + 1));
      }
    }
    for (String key :
        new String[] {
          "min_nodes", "max_nodes", "join_timeout", "last_call_timeout", "join_deadline"
        }) {
      if (!fields.containsKey(key)) {
        return Optional.empty();
      }
    }
    try {
      return Optional.of(
          new NodeNote(
              Integer.parseInt(fields.get("min_nodes")),
              Integer.parseInt(fields.get("max_nodes")),
              Duration.ofSeconds(Long.parseLong(fields.get("join_timeout"))),
              Duration.ofSeconds(Long.parseLong(fields.get("last_call_timeout"))),
              Instant.parse(fields.get("join_deadline"))));
    } catch (NumberFormatException | DateTimeParseException e) {
      return Optional.empty();
    }
  }
}
