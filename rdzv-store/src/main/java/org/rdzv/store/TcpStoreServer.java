package org.rdzv.store;

import java.net.InetSocketAddress;
import java.time.Duration;

/**
 * A TCPStore server that PyTorch 1.13 and 2.x clients (and {@link TcpStore}) use as if it were
 * PyTorch's own. The protocol family is chosen per connection from its first bytes.
 *
 * <p>One event-loop thread serves every connection with non-blocking I/O; blocking GET and WAIT
 * requests are parked as registrations, not threads. The server never times anything out and never
 * closes an idle connection. A connection that sends malformed input or exceeds a limit of {@link
 * TcpStoreServerOptions} is closed and the reason logged; nothing else is affected.
 *
 * <pre>{@code
 * try (TcpStoreServer server = TcpStoreServer.start(TcpStoreServerOptions.builder().port(0).build())) {
 *   TcpStore store = TcpStore.connect(TcpStoreOptions.builder("127.0.0.1", server.port()).build());
 * }
 * }</pre>
 */
public interface TcpStoreServer extends AutoCloseable {

  /**
   * Binds and starts serving. Returns once the socket listens, so clients can connect at once.
   *
   * @throws org.rdzv.api.StoreException if the address cannot be bound (for example, the port is in
   *     use)
   */
  static TcpStoreServer start(TcpStoreServerOptions options) {
    return StoreServer.start(options);
  }

  /** Starts a server on {@code host:port} with the default limits; port 0 picks a free port. */
  static TcpStoreServer start(String host, int port) {
    return start(TcpStoreServerOptions.builder().host(host).port(port).build());
  }

  /** The bound port (the chosen one when the options said 0). */
  int port();

  /** The bound address. */
  InetSocketAddress address();

  /** The number of currently open client connections. */
  int connectionCount();

  /** The number of keys stored (as GETNUMKEYS counts them). */
  long numKeys();

  /** The number of WAIT requests (and blocking GETs) parked on the server right now. */
  int pendingWaits();

  /** Whether the server is still serving. */
  boolean isRunning();

  /**
   * Blocks until the server has stopped (after {@link #close()}), up to {@code timeout}; returns
   * whether it stopped.
   */
  boolean awaitTermination(Duration timeout) throws InterruptedException;

  /** Stops accepting, closes every connection and the listening socket. Idempotent. */
  @Override
  void close();
}
