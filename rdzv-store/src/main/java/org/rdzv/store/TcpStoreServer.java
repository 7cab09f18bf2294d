package org.rdzv.store;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletionStage;

/**
 * A TCPStore server that PyTorch 1.13 and 2.x clients (and {@link TcpStore}) use as if it were
 * PyTorch's own. The protocol family is chosen per connection from its first bytes.
 *
 * <p>One event-loop thread serves every connection with non-blocking I/O; blocking GET and WAIT
 * requests are parked as registrations, not threads. Waits never time out and an idle connection is
 * never closed (timeouts are the clients'), except one that leaves a request half-sent or stops
 * reading its replies for longer than {@link TcpStoreServerOptions} allow. A connection that sends
 * malformed input or exceeds a limit is closed and the reason logged; nothing else is affected.
 *
 * <p>What clients make the server hold is bounded by {@link TcpStoreServerOptions#memoryBudget()}
 * and {@link TcpStoreServerOptions#maxConnections()}, and large requests are executed in slices
 * interleaved with other connections (see docs/tcpstore.md, "Limits").
 *
 * <p>If the event loop itself fails (an {@link OutOfMemoryError}, a bug), the server logs one line
 * saying so, closes every connection and completes {@link #termination()} with the error: an owner
 * that waits on it learns why the server is gone. Running out of file descriptors is not a failure:
 * the server stops accepting for a while, keeps serving the connections it holds, and accepts again
 * when descriptors are free.
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
   * Blocks until the server has stopped (after {@link #close()} or a failure, see {@link
   * #failure()}), up to {@code timeout}; returns whether it stopped.
   */
  boolean awaitTermination(Duration timeout) throws InterruptedException;

  /**
   * Completes when the server has stopped and closed its connections: normally after {@link
   * #close()}, exceptionally with the error that ended its event loop (for example an {@link
   * OutOfMemoryError}) if it failed. Dependent actions run on the server's thread or the caller's;
   * keep them short.
   */
  CompletionStage<Void> termination();

  /** The error that ended the server, once it has stopped because of one; empty otherwise. */
  Optional<Throwable> failure();

  /** Stops accepting, closes every connection and the listening socket. Idempotent. */
  @Override
  void close();
}
