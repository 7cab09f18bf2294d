package org.rdzv.dynamic;

import java.time.Duration;
import org.rdzv.api.RendezvousParameters;

/**
 * The settings of one dynamic rendezvous node, read from {@link RendezvousParameters} with
 * PyTorch's keys, defaults and checks ({@link #from}), once per handler; every default is here.
 * Immutable; backend providers receive it in {@link
 * org.rdzv.dynamic.spi.RendezvousBackendProvider#createBackend}.
 *
 * @param runId the rendezvous id; not empty, valid Unicode text ({@link
 *     RendezvousKeys#validateRunId})
 * @param minNodes at least 1
 * @param maxNodes at least {@code minNodes}
 * @param joinTimeout {@code join_timeout}, default 600 s
 * @param lastCallTimeout {@code last_call_timeout}, default 30 s
 * @param closeTimeout {@code close_timeout}, default 30 s
 * @param heartbeatTimeout {@code heartbeat_timeout}, default 5 s
 * @param keepAliveInterval {@code keep_alive_interval}, default 5 s
 * @param keepAliveMaxAttempt {@code keep_alive_max_attempt}, default 3
 * @param dialect the state dialect written when the store holds none ({@code state_dialect}, else
 *     implied by {@code store_protocol}, else 1.13)
 * @param naturalRanks whether a round this node completes ranks hosts in natural order ({@code
 *     rank_order=natural}, the default) rather than PyTorch's string order ({@code pytorch})
 * @param pollInterval the longest wait between two reads while nothing signals a change (1 s, as
 *     PyTorch polls)
 */
public record RendezvousSettings(
    String runId,
    int minNodes,
    int maxNodes,
    Duration joinTimeout,
    Duration lastCallTimeout,
    Duration closeTimeout,
    Duration heartbeatTimeout,
    Duration keepAliveInterval,
    int keepAliveMaxAttempt,
    StateDialect dialect,
    boolean naturalRanks,
    Duration pollInterval) {

  /**
   * @throws IllegalArgumentException with PyTorch's message for an empty run id, a bad node range
   *     or a timeout that is not positive
   */
  public RendezvousSettings {
    RendezvousKeys.validateRunId(runId);
    if (minNodes < 1) {
      throw new IllegalArgumentException(
          "The minimum number of nodes (" + minNodes + ") must be greater than zero.");
    }
    if (maxNodes < minNodes) {
      throw new IllegalArgumentException(
          "The maximum number of nodes ("
              + maxNodes
              + ") must be greater than or equal to the minimum number of nodes ("
              + minNodes
              + ").");
    }
    positive("join", joinTimeout);
    positive("last_call", lastCallTimeout);
    positive("close", closeTimeout);
    positive("heartbeat", heartbeatTimeout);
    if (keepAliveInterval.isNegative() || keepAliveInterval.isZero()) {
      throw new IllegalArgumentException(
          "The keep-alive interval (" + pythonTimedelta(keepAliveInterval) + ") must be positive.");
    }
  }

  /** The time after which a node without a heartbeat is dropped. */
  public Duration expiry() {
    return keepAliveInterval.multipliedBy(keepAliveMaxAttempt);
  }

  /**
   * Reads PyTorch's keys ({@code join_timeout} 600 s, {@code last_call_timeout} 30 s, {@code
   * close_timeout} 30 s, {@code heartbeat_timeout} 5 s, {@code keep_alive_interval} 5 s, {@code
   * keep_alive_max_attempt} 3) and the Java-only {@code state_dialect} (else implied by {@code
   * store_protocol}) and {@code rank_order}.
   *
   * @throws IllegalArgumentException for a value PyTorch refuses, with its message
   */
  public static RendezvousSettings from(RendezvousParameters p) {
    Integer keepAliveInterval = p.getAsInt("keep_alive_interval", 5);
    if (keepAliveInterval == null) {
      throw new IllegalArgumentException(
          "You passed 'keep_alive_interval=None' as a rendezvous configuration option");
    }
    Integer keepAliveMaxAttempt = p.getAsInt("keep_alive_max_attempt", 3);
    if (keepAliveMaxAttempt == null) {
      throw new IllegalArgumentException(
          "You passed 'keep_alive_max_attempt=None' as a rendezvous configuration option");
    }
    StateDialect dialect = StateDialect.V1_13;
    var protocol = p.getString("store_protocol");
    if (protocol.isPresent()
        && !protocol.get().isBlank()
        && !protocol.get().strip().equalsIgnoreCase("auto")) {
      dialect = StateDialect.parse(protocol.get());
    }
    var configured = p.getString("state_dialect");
    if (configured.isPresent() && !configured.get().strip().equalsIgnoreCase("auto")) {
      dialect = StateDialect.parse(configured.get());
    }
    String order =
        p.getString("rank_order").orElse("natural").strip().toLowerCase(java.util.Locale.ROOT);
    if (!order.equals("natural") && !order.equals("pytorch")) {
      throw new IllegalArgumentException(
          "The rendezvous configuration option 'rank_order' must be 'natural' or 'pytorch'.");
    }
    return new RendezvousSettings(
        p.runId(),
        p.minNodes(),
        p.maxNodes(),
        seconds(p, "join_timeout", 600),
        seconds(p, "last_call_timeout", 30),
        seconds(p, "close_timeout", 30),
        seconds(p, "heartbeat_timeout", 5),
        Duration.ofSeconds(keepAliveInterval),
        keepAliveMaxAttempt,
        dialect,
        order.equals("natural"),
        Duration.ofSeconds(1));
  }

  RendezvousSettings withPollInterval(Duration poll) {
    return new RendezvousSettings(
        runId,
        minNodes,
        maxNodes,
        joinTimeout,
        lastCallTimeout,
        closeTimeout,
        heartbeatTimeout,
        keepAliveInterval,
        keepAliveMaxAttempt,
        dialect,
        naturalRanks,
        poll);
  }

  private static Duration seconds(RendezvousParameters p, String key, int defaultSeconds) {
    Integer v = p.getAsInt(key, null);
    return Duration.ofSeconds(v == null ? defaultSeconds : v);
  }

  private static void positive(String name, Duration d) {
    if (d.isNegative() || d.isZero()) {
      throw new IllegalArgumentException(
          "The " + name + " timeout (" + pythonTimedelta(d) + ") must be positive.");
    }
  }

  /**
   * Python's {@code str(timedelta)} for whole seconds: {@code 0:00:00}, {@code -1 day, 23:59:59}.
   */
  static String pythonTimedelta(Duration d) {
    long total = d.getSeconds();
    long days = Math.floorDiv(total, 86_400);
    long rest = Math.floorMod(total, 86_400);
    String hms = String.format("%d:%02d:%02d", rest / 3600, (rest / 60) % 60, rest % 60);
    if (days == 0) {
      return hms;
    }
    return days + (Math.abs(days) == 1 ? " day, " : " days, ") + hms;
  }
}
