package org.rdzv.dynamic;

import java.time.Duration;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.store.StoreProtocol;

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
 * @param dialect the state dialect written when the store holds none: {@code state_dialect}, else
 *     implied by {@code store_protocol} ({@code 1.13} or {@code 2}), else (for a TCP store) the
 *     protocol family of a PyTorch store server, else 2.6+ (see {@link #from})
 * @param naturalRanks whether a round this node completes ranks hosts in natural order ({@code
 *     rank_order=natural}, the default) rather than PyTorch's string order ({@code pytorch})
 * @param pollInterval the longest wait between two reads while nothing signals a change (1 s, as
 *     PyTorch polls)
 * @param dialectOrigin the configuration that pinned {@code dialect} (e.g. {@code
 *     store_protocol=1.13}), or {@code null} when it is only a default: a pinned node refuses a
 *     state of another dialect, an unpinned one adopts it
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
    Duration pollInterval,
    String dialectOrigin) {

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

  /** Settings whose dialect is a default, not pinned by configuration. */
  RendezvousSettings(
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
    this(
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
        pollInterval,
        null);
  }

  /** Whether configuration chose the dialect (then a state of another dialect is an error). */
  boolean dialectPinned() {
    return dialectOrigin != null;
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
    // The dialect rule (docs/dynamic-rendezvous.md): the state already stored decides (see
    // StateHolder#dialect); without one, what configuration says, else what the store server
    // speaks (a TCP store, see DynamicHandler.create), else 2.6+: most PyTorch users run 2.x.
    StateDialect dialect = StateDialect.V2_6;
    String origin = null;
    var protocol = p.getString("store_protocol");
    if (protocol.isPresent()) {
      switch (StoreProtocol.parse(protocol.get())) {
        case V1_13 -> {
          dialect = StateDialect.V1_13;
          origin = "store_protocol=" + protocol.get().strip();
        }
        case V2 -> {
          dialect = StateDialect.V2_6;
          origin = "store_protocol=" + protocol.get().strip();
        }
        case AUTO -> {}
      }
    }
    var configured = p.getString("state_dialect");
    if (configured.isPresent()
        && !configured.get().isBlank()
        && !configured.get().strip().equalsIgnoreCase("auto")) {
      dialect = StateDialect.parse(configured.get());
      origin = "state_dialect=" + configured.get().strip();
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
        Duration.ofSeconds(1),
        origin);
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
        poll,
        dialectOrigin);
  }

  /**
   * These settings with {@code fallback} as the dialect for a store without a state, unless
   * configuration pinned one: what a PyTorch store server's protocol family tells (1.13 or 2.x).
   */
  RendezvousSettings withDefaultDialect(StateDialect fallback) {
    if (dialectPinned() || fallback == dialect) {
      return this;
    }
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
        fallback,
        naturalRanks,
        pollInterval,
        null);
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
