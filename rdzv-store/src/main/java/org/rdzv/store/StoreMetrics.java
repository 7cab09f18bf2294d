package org.rdzv.store;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.ToDoubleFunction;

/**
 * The meters of one {@link TcpStoreServer}, registered in the options' {@link MeterRegistry} with a
 * {@code port} tag and removed when the server stops. Counters are incremented on the event loop;
 * gauges read values the event loop publishes once per turn. Names as Prometheus shows them are in
 * docs/tcpstore.md.
 */
final class StoreMetrics {
  /** What the gauges read: published by the event loop once per turn. */
  static final class Snapshot {
    volatile int connections;
    volatile int pausedForReplies;
    volatile int pausedForMemory;
    volatile int keys;
    volatile int waits;
    volatile long memoryUsed;
    volatile long memoryData;
    volatile long memoryFrames;
    volatile long memoryReplies;
    volatile long memoryWaits;
    volatile long memoryBudget;
  }

  private final MeterRegistry registry;
  private final List<Meter> meters = new ArrayList<>();
  private final Counter[] requests = new Counter[Command.values().length];
  private final Counter[] rejectedFrames = new Counter[ProtocolException.Reason.values().length];
  private final Counter accepted;
  private final Counter rejectedAtLimit;
  private final Counter rejectedForMemory;
  private final Counter acceptFailures;
  private final Counter received;
  private final Counter sent;

  StoreMetrics(MeterRegistry registry, int port, Snapshot snapshot) {
    this.registry = registry;
    Tags tags = Tags.of("port", Integer.toString(port));
    for (Command c : Command.values()) {
      requests[c.ordinal()] =
          counter(
              "rdzv.store.requests",
              "Requests received, by command",
              tags.and("command", c.name().toLowerCase(Locale.ROOT)),
              null);
    }
    for (ProtocolException.Reason r : ProtocolException.Reason.values()) {
      rejectedFrames[r.ordinal()] =
          counter(
              "rdzv.store.frames.rejected",
              "Connections closed for what they sent or failed to read, by reason",
              tags.and("reason", r.label()),
              null);
    }
    accepted = counter("rdzv.store.connections.accepted", "Connections accepted", tags, null);
    rejectedAtLimit =
        counter(
            "rdzv.store.connections.rejected",
            "Connections closed at once on accept, by reason",
            tags.and("reason", "limit"),
            null);
    rejectedForMemory =
        counter(
            "rdzv.store.connections.rejected",
            "Connections closed at once on accept, by reason",
            tags.and("reason", "memory"),
            null);
    acceptFailures =
        counter(
            "rdzv.store.accept.failures",
            "Failed accepts (typically: out of file descriptors)",
            tags,
            null);
    received = counter("rdzv.store.received", "Bytes received from clients", tags, "bytes");
    sent = counter("rdzv.store.sent", "Bytes sent to clients", tags, "bytes");
    gauge(
        "rdzv.store.connections",
        "Open client connections",
        tags,
        null,
        snapshot,
        s -> s.connections);
    gauge(
        "rdzv.store.connections.paused",
        "Connections not read from, by reason",
        tags.and("reason", "replies"),
        null,
        snapshot,
        s -> s.pausedForReplies);
    gauge(
        "rdzv.store.connections.paused",
        "Connections not read from, by reason",
        tags.and("reason", "memory"),
        null,
        snapshot,
        s -> s.pausedForMemory);
    gauge(
        "rdzv.store.keys",
        "Keys stored (as GETNUMKEYS counts them)",
        tags,
        null,
        snapshot,
        s -> s.keys);
    gauge("rdzv.store.waits", "WAIT requests parked", tags, null, snapshot, s -> s.waits);
    gauge(
        "rdzv.store.memory.used",
        "Bytes counted against the memory budget",
        tags,
        "bytes",
        snapshot,
        s -> s.memoryUsed);
    gauge(
        "rdzv.store.memory.budget",
        "The memory budget",
        tags,
        "bytes",
        snapshot,
        s -> s.memoryBudget);
    String held = "Bytes held, by kind";
    gauge(
        "rdzv.store.memory.held",
        held,
        tags.and("kind", "data"),
        "bytes",
        snapshot,
        s -> s.memoryData);
    gauge(
        "rdzv.store.memory.held",
        held,
        tags.and("kind", "frames"),
        "bytes",
        snapshot,
        s -> s.memoryFrames);
    gauge(
        "rdzv.store.memory.held",
        held,
        tags.and("kind", "replies"),
        "bytes",
        snapshot,
        s -> s.memoryReplies);
    gauge(
        "rdzv.store.memory.held",
        held,
        tags.and("kind", "waits"),
        "bytes",
        snapshot,
        s -> s.memoryWaits);
  }

  private Counter counter(String name, String help, Tags tags, String unit) {
    Counter c =
        Counter.builder(name).description(help).tags(tags).baseUnit(unit).register(registry);
    meters.add(c);
    return c;
  }

  private void gauge(
      String name,
      String help,
      Tags tags,
      String unit,
      Snapshot snapshot,
      ToDoubleFunction<Snapshot> value) {
    meters.add(
        Gauge.builder(name, snapshot, value)
            .description(help)
            .tags(tags)
            .baseUnit(unit)
            .strongReference(true)
            .register(registry));
  }

  void request(Command command) {
    requests[command.ordinal()].increment();
  }

  void rejected(ProtocolException.Reason reason) {
    rejectedFrames[reason.ordinal()].increment();
  }

  void accepted() {
    accepted.increment();
  }

  void rejectedAtLimit() {
    rejectedAtLimit.increment();
  }

  void rejectedForMemory() {
    rejectedForMemory.increment();
  }

  void acceptFailed() {
    acceptFailures.increment();
  }

  void received(long bytes) {
    received.increment(bytes);
  }

  void sent(long bytes) {
    if (bytes > 0) {
      sent.increment(bytes);
    }
  }

  /** Removes every meter from the registry (the server stopped). */
  void close() {
    for (Meter m : meters) {
      registry.remove(m);
    }
    meters.clear();
  }
}
