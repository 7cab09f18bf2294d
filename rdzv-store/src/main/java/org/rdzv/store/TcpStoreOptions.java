package org.rdzv.store;

import java.time.Duration;
import java.util.Objects;
import java.util.OptionalInt;

/**
 * Settings of a {@link TcpStore} client, named after PyTorch's {@code TCPStore} arguments.
 * Immutable; every default lives in {@link #builder(String, int)}.
 *
 * @param host the server's host name or address
 * @param port the server's port
 * @param timeout the default deadline of blocking operations and of connecting (PyTorch's {@code
 *     timeout}, default 300 s)
 * @param protocol the protocol family ({@code store_protocol}, default {@link StoreProtocol#AUTO})
 * @param worldSize when present together with {@code waitForWorkers}, the client announces itself
 *     like a torch worker with {@code ADD "init/" +1} right after connecting
 * @param waitForWorkers PyTorch's {@code wait_for_workers} (default true)
 * @param awaitServer whether the first connection retries a refused connection until {@code
 *     timeout}, as PyTorch does, because nodes may start before the node that hosts the store
 *     (default true); false fails at once, as a status tool wants. Once connected, a refused
 *     reconnect always fails at once: the server was there and is gone
 */
public record TcpStoreOptions(
    String host,
    int port,
    Duration timeout,
    StoreProtocol protocol,
    OptionalInt worldSize,
    boolean waitForWorkers,
    boolean awaitServer) {

  /** PyTorch's default store timeout. */
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(300);

  public TcpStoreOptions {
    Objects.requireNonNull(host, "host");
    Objects.requireNonNull(timeout, "timeout");
    Objects.requireNonNull(protocol, "protocol");
    Objects.requireNonNull(worldSize, "worldSize");
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("port must be between 1 and 65535, got " + port);
    }
    if (timeout.isNegative()) {
      throw new IllegalArgumentException("timeout must not be negative, got " + timeout);
    }
    if (worldSize.isPresent() && worldSize.getAsInt() < 1) {
      throw new IllegalArgumentException(
          "world_size must be positive, got " + worldSize.getAsInt());
    }
  }

  public static Builder builder(String host, int port) {
    return new Builder(host, port);
  }

  /** A builder starting from this record's values. */
  public Builder toBuilder() {
    Builder b =
        new Builder(host, port)
            .timeout(timeout)
            .protocol(protocol)
            .waitForWorkers(waitForWorkers)
            .awaitServer(awaitServer);
    worldSize.ifPresent(b::worldSize);
    return b;
  }

  /** Builds {@link TcpStoreOptions}. */
  public static final class Builder {
    private final String host;
    private final int port;
    private Duration timeout = DEFAULT_TIMEOUT;
    private StoreProtocol protocol = StoreProtocol.AUTO;
    private OptionalInt worldSize = OptionalInt.empty();
    private boolean waitForWorkers = true;
    private boolean awaitServer = true;

    private Builder(String host, int port) {
      this.host = host;
      this.port = port;
    }

    public Builder timeout(Duration timeout) {
      this.timeout = timeout;
      return this;
    }

    public Builder protocol(StoreProtocol protocol) {
      this.protocol = protocol;
      return this;
    }

    /** Announce as one of {@code worldSize} torch workers ({@code ADD "init/" +1}). */
    public Builder worldSize(int worldSize) {
      this.worldSize = OptionalInt.of(worldSize);
      return this;
    }

    public Builder waitForWorkers(boolean waitForWorkers) {
      this.waitForWorkers = waitForWorkers;
      return this;
    }

    /**
     * Whether the first connection waits (up to the timeout) for a server that refuses, as
     * PyTorch's client does (default true); false reports a refused connection at once.
     */
    public Builder awaitServer(boolean awaitServer) {
      this.awaitServer = awaitServer;
      return this;
    }

    public TcpStoreOptions build() {
      return new TcpStoreOptions(
          host, port, timeout, protocol, worldSize, waitForWorkers, awaitServer);
    }
  }
}
