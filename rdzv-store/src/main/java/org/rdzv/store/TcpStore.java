package org.rdzv.store;

import java.time.Duration;
import java.util.List;
import java.util.function.Consumer;
import org.rdzv.api.Store;

/**
 * A client of a TCPStore server — PyTorch's (1.13 or 2.x) or {@link TcpStoreServer} — that behaves
 * on the wire like PyTorch's own {@code TCPStore} client.
 *
 * <p>Like PyTorch, the client sends every user key as {@code "/" + key} (UTF-8) and the internal
 * {@code init/} key raw; {@link #get} is a WAIT followed by a GET; timeouts are enforced by the
 * client. After a blocking call times out, a 2.x client cancels the wait (CANCEL_WAIT), and a 1.13
 * client, which has no cancel, drops its connection so that the server's late answer cannot be
 * mistaken for the reply to a later request; the next call reconnects.
 *
 * <p>Thread-safe: requests from several threads are serialized over one connection, so a blocking
 * call holds the connection until it returns. Create more clients for independent blocking calls; a
 * client is cheap (one socket, no thread until {@link #watchKey} is used).
 *
 * <p>Dialects: the 1.13 protocol lacks APPEND, MULTI_GET, MULTI_SET, queues and LIST. On it, {@link
 * #multiGet} is a WAIT followed by pipelined GETs and {@link #multiSet} pipelined SETs (not
 * atomic), while {@link #append}, the queue operations and {@link #listKeys} throw {@link
 * UnsupportedOperationException}. The 2.x protocol lacks WATCH_KEY ({@link #watchKey} throws).
 *
 * <p>Errors: the protocol has no error replies; a server reports every error by closing the
 * connection, which surfaces as {@link org.rdzv.api.StoreException}. The client then reconnects on
 * its next call. Connecting retries with exponential backoff and jitter until {@link #timeout()}.
 */
public interface TcpStore extends Store {

  /**
   * Connects to the server (retrying until the options' timeout) and, for {@link
   * StoreProtocol#AUTO}, detects the protocol family.
   *
   * @throws org.rdzv.api.StoreTimeoutException if no server answered in time
   * @throws org.rdzv.api.StoreException if interrupted while connecting (the interrupt flag is set)
   */
  static TcpStore connect(TcpStoreOptions options) {
    return TcpStoreClient.connect(options);
  }

  /** {@link #connect(TcpStoreOptions)} with the default options for {@code host:port}. */
  static TcpStore connect(String host, int port) {
    return connect(TcpStoreOptions.builder(host, port).build());
  }

  /** The protocol family in use: {@link StoreProtocol#V1_13} or {@link StoreProtocol#V2}. */
  StoreProtocol protocol();

  /** The options this client was created with. */
  TcpStoreOptions options();

  /**
   * Watches {@code key} over the 1.13 callback connection: {@code listener} receives every later
   * creation, update and deletion of the key (SET, ADD, COMPARE_SET, DELETE_KEY, from any client).
   * Events are delivered in order on one background thread, which the first call starts; a listener
   * must not block for long. The registration is acknowledged by the server before this method
   * returns, so changes made afterwards are seen.
   *
   * <p>Closing the returned handle stops delivery to {@code listener} (the 1.13 protocol cannot
   * unregister on the server; the callback connection simply ignores further events of that key).
   * If the callback connection breaks, delivery stops until the next {@code watchKey} call opens a
   * new one and registers every watched key again; changes in between are not reported.
   *
   * @throws UnsupportedOperationException on the 2.x protocol, which has no WATCH_KEY
   * @throws org.rdzv.api.StoreException if the callback connection cannot be set up
   */
  AutoCloseable watchKey(String key, Consumer<WatchEvent> listener);

  /**
   * Appends {@code value} to the queue {@code key} (2.x, QUEUE_PUSH); wakes one waiter.
   *
   * @throws UnsupportedOperationException on the 1.13 protocol
   */
  void queuePush(String key, byte[] value);

  /**
   * Removes and returns the head of the queue {@code key} (2.x, QUEUE_POP). With {@code block},
   * waits up to {@link #timeout()} for an element first; without, returns {@code null} when the
   * queue is empty.
   *
   * @throws org.rdzv.api.StoreTimeoutException if blocking and nothing arrived in time
   * @throws UnsupportedOperationException on the 1.13 protocol
   */
  byte[] queuePop(String key, boolean block);

  /**
   * The length of the queue {@code key} (2.x, QUEUE_LEN); 0 for an unknown queue.
   *
   * @throws UnsupportedOperationException on the 1.13 protocol
   */
  long queueLen(String key);

  /**
   * Every user key in the store (2.x, LIST), without the {@code /} prefix; internal keys such as
   * {@code init/} are hidden, as in PyTorch.
   *
   * @throws UnsupportedOperationException on the 1.13 protocol
   */
  List<String> listKeys();

  /**
   * Waits until every key exists, up to {@code timeout}. On timeout the 2.x client sends
   * CANCEL_WAIT; the 1.13 client reconnects.
   *
   * @throws org.rdzv.api.StoreTimeoutException after {@code timeout}
   */
  @Override
  void await(List<String> keys, Duration timeout);

  /**
   * Appends to the value of {@code key}, creating it when missing (2.x, APPEND).
   *
   * @throws UnsupportedOperationException on the 1.13 protocol, which has no APPEND
   */
  @Override
  void append(String key, byte[] value);
}
