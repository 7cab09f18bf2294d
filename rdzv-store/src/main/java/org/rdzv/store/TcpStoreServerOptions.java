package org.rdzv.store;

import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Metrics;
import java.time.Duration;
import java.util.Objects;

/**
 * Settings of a {@link TcpStoreServer}. Immutable; every default lives in {@link #builder()}.
 *
 * @param host the address to bind; empty means every address, dual-stack ({@code [::]} with
 *     IPv4-mapped addresses, like PyTorch's servers)
 * @param port the port; 0 picks a free one (see {@link TcpStoreServer#port()})
 * @param backlog the accept backlog (the kernel caps it at {@code net.core.somaxconn})
 * @param maxKeyLength the longest key accepted, in bytes (PyTorch 2.x libuv: 8192)
 * @param maxValueLength the longest value accepted, in bytes (PyTorch 2.x libuv: 8 MiB); also the
 *     largest reply one request may ask for (MULTI_GET, LIST) and the largest value APPEND may
 *     build
 * @param maxKeysPerRequest the most keys in one CHECK, WAIT, MULTI_GET or MULTI_SET (libuv: 131072)
 * @param maxConnections the most client connections open at once; one more is accepted and closed
 *     at once (16384)
 * @param memoryBudget the bytes the server may hold for its clients: half for stored data (a write
 *     past it is refused), half for connections (an allowance of 8 KiB each, then half-received
 *     frames, queued replies and parked waits; past it, a connection waits until memory is given
 *     back). Default: a quarter of the JVM's maximum heap
 * @param maxQueuedReplyBytes the reply bytes one connection may have queued before it is no longer
 *     read from, until it has read half of them (16 MiB)
 * @param frameIdleTimeout how long a connection may leave a request half-sent without sending a
 *     byte before it is closed (30 s)
 * @param replyDrainTimeout how long a connection that is no longer read from because it does not
 *     read its replies may stay so before it is closed (30 s)
 * @param meterRegistry where the server records its metrics ({@code rdzv_store_*}); default {@link
 *     Metrics#globalRegistry}, which records nothing until a registry is added to it
 */
public record TcpStoreServerOptions(
    String host,
    int port,
    int backlog,
    int maxKeyLength,
    int maxValueLength,
    int maxKeysPerRequest,
    int maxConnections,
    long memoryBudget,
    long maxQueuedReplyBytes,
    Duration frameIdleTimeout,
    Duration replyDrainTimeout,
    MeterRegistry meterRegistry) {

  static {
    MicrometerLogging.ensure();
  }

  /** The smallest memory budget accepted. */
  public static final long MIN_MEMORY_BUDGET = 1024 * 1024;

  /** Every address, a free port, PyTorch 2.x's limits, the default budget of this JVM. */
  public static final TcpStoreServerOptions DEFAULT = builder().build();

  public TcpStoreServerOptions {
    host = host == null ? "" : host.strip();
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be between 0 and 65535, got " + port);
    }
    if (backlog < 1) {
      throw new IllegalArgumentException("backlog must be positive, got " + backlog);
    }
    if (maxKeyLength < 1 || maxValueLength < 0 || maxKeysPerRequest < 1) {
      throw new IllegalArgumentException(
          "limits must be positive: maxKeyLength="
              + maxKeyLength
              + " maxValueLength="
              + maxValueLength
              + " maxKeysPerRequest="
              + maxKeysPerRequest);
    }
    if (maxValueLength > Integer.MAX_VALUE - 64) {
      throw new IllegalArgumentException("maxValueLength is too large: " + maxValueLength);
    }
    if (maxConnections < 1) {
      throw new IllegalArgumentException("maxConnections must be positive, got " + maxConnections);
    }
    if (memoryBudget < MIN_MEMORY_BUDGET) {
      throw new IllegalArgumentException(
          "memoryBudget must be at least " + MIN_MEMORY_BUDGET + " bytes, got " + memoryBudget);
    }
    if (maxQueuedReplyBytes < 1) {
      throw new IllegalArgumentException(
          "maxQueuedReplyBytes must be positive, got " + maxQueuedReplyBytes);
    }
    frameIdleTimeout = positive("frameIdleTimeout", frameIdleTimeout);
    replyDrainTimeout = positive("replyDrainTimeout", replyDrainTimeout);
    meterRegistry = meterRegistry == null ? Metrics.globalRegistry : meterRegistry;
  }

  private static Duration positive(String name, Duration d) {
    Objects.requireNonNull(d, name);
    if (d.isNegative() || d.isZero()) {
      throw new IllegalArgumentException(name + " must be positive, got " + d);
    }
    return d;
  }

  /**
   * The default memory budget: a quarter of the JVM's maximum heap (1 GiB when the heap is
   * unbounded), which leaves the collector room: what clients make the server hold is live data it
   * copies and scans.
   */
  public static long defaultMemoryBudget() {
    long max = Runtime.getRuntime().maxMemory();
    return max == Long.MAX_VALUE ? 1L << 30 : Math.max(MIN_MEMORY_BUDGET, max / 4);
  }

  public static Builder builder() {
    return new Builder();
  }

  /** A builder starting from this record's values. */
  public Builder toBuilder() {
    return new Builder()
        .host(host)
        .port(port)
        .backlog(backlog)
        .maxKeyLength(maxKeyLength)
        .maxValueLength(maxValueLength)
        .maxKeysPerRequest(maxKeysPerRequest)
        .maxConnections(maxConnections)
        .memoryBudget(memoryBudget)
        .maxQueuedReplyBytes(maxQueuedReplyBytes)
        .frameIdleTimeout(frameIdleTimeout)
        .replyDrainTimeout(replyDrainTimeout)
        .meterRegistry(meterRegistry);
  }

  Limits limits() {
    return new Limits(maxKeyLength, maxValueLength, maxKeysPerRequest);
  }

  /** Builds {@link TcpStoreServerOptions}; defaults as in {@link #DEFAULT}. */
  public static final class Builder {
    private String host = "";
    private int port = 0;
    private int backlog = 16384;
    private int maxKeyLength = Limits.LIBUV.maxKeyLength();
    private int maxValueLength = Limits.LIBUV.maxValueLength();
    private int maxKeysPerRequest = Limits.LIBUV.maxKeysPerRequest();
    private int maxConnections = 16384;
    private long memoryBudget = defaultMemoryBudget();
    private long maxQueuedReplyBytes = 16L * 1024 * 1024;
    private Duration frameIdleTimeout = Duration.ofSeconds(30);
    private Duration replyDrainTimeout = Duration.ofSeconds(30);
    private MeterRegistry meterRegistry = Metrics.globalRegistry;

    private Builder() {}

    public Builder host(String host) {
      this.host = host;
      return this;
    }

    public Builder port(int port) {
      this.port = port;
      return this;
    }

    public Builder backlog(int backlog) {
      this.backlog = backlog;
      return this;
    }

    public Builder maxKeyLength(int maxKeyLength) {
      this.maxKeyLength = maxKeyLength;
      return this;
    }

    public Builder maxValueLength(int maxValueLength) {
      this.maxValueLength = maxValueLength;
      return this;
    }

    public Builder maxKeysPerRequest(int maxKeysPerRequest) {
      this.maxKeysPerRequest = maxKeysPerRequest;
      return this;
    }

    public Builder maxConnections(int maxConnections) {
      this.maxConnections = maxConnections;
      return this;
    }

    public Builder memoryBudget(long memoryBudget) {
      this.memoryBudget = memoryBudget;
      return this;
    }

    public Builder maxQueuedReplyBytes(long maxQueuedReplyBytes) {
      this.maxQueuedReplyBytes = maxQueuedReplyBytes;
      return this;
    }

    public Builder frameIdleTimeout(Duration frameIdleTimeout) {
      this.frameIdleTimeout = frameIdleTimeout;
      return this;
    }

    public Builder replyDrainTimeout(Duration replyDrainTimeout) {
      this.replyDrainTimeout = replyDrainTimeout;
      return this;
    }

    public Builder meterRegistry(MeterRegistry meterRegistry) {
      this.meterRegistry = meterRegistry;
      return this;
    }

    public TcpStoreServerOptions build() {
      return new TcpStoreServerOptions(
          host,
          port,
          backlog,
          maxKeyLength,
          maxValueLength,
          maxKeysPerRequest,
          maxConnections,
          memoryBudget,
          maxQueuedReplyBytes,
          frameIdleTimeout,
          replyDrainTimeout,
          meterRegistry);
    }
  }
}
