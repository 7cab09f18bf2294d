package org.rdzv.store;

import java.io.EOFException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import org.rdzv.api.StoreException;
import org.rdzv.api.StoreTimeoutException;

/**
 * The {@link TcpStore} client: one blocking socket guarded by a lock, over which each operation is
 * one request and its answer. Connecting, reconnecting and the handshake are the {@link
 * Connector}'s; the 1.13 watch socket is the {@link WatchConnection}'s.
 */
final class TcpStoreClient implements TcpStore {
  private static final System.Logger LOG = System.getLogger(TcpStore.class.getName());
  private static final byte[] INIT_KEY = Wire.INIT_KEY.getBytes(StandardCharsets.US_ASCII);

  /** How often a blocked wait looks at the interrupt flag. */
  private static final long WAIT_SLICE_MILLIS = 100;

  private final TcpStoreOptions options;
  private final Connector connector;
  private final WatchConnection watches;

  private final ReentrantLock lock = new ReentrantLock();
  private final Frame frame = new Frame();
  private volatile Duration timeout;

  /** Whether any request was answered yet (a forced 1.13 client's first failure is telling). */
  private volatile boolean answered;

  private volatile Link link;
  private volatile boolean closed;

  private TcpStoreClient(TcpStoreOptions options) {
    this.options = options;
    this.timeout = options.timeout();
    this.connector = new Connector(options);
    this.watches = new WatchConnection(connector, () -> timeout);
  }

  static TcpStoreClient connect(TcpStoreOptions options) {
    TcpStoreClient client = new TcpStoreClient(options);
    client.lock.lock();
    try {
      client.link = client.connector.open(System.nanoTime() + options.timeout().toNanos());
      if (options.worldSize().isPresent() && options.waitForWorkers()) {
        client.frame.reset().u8(Command.ADD.code(client.connector.family())).bytes(INIT_KEY).i64(1);
        client.link.readTimeout(client.timeout);
        client.link.send(client.frame);
        client.link.i64();
        client.answered = true;
      }
    } catch (IOException e) {
      client.closeQuietly();
      throw new StoreException(client.failure("announcing the worker (ADD init/)", e), e);
    } catch (RuntimeException e) {
      client.closeQuietly();
      throw e;
    } finally {
      client.lock.unlock();
    }
    return client;
  }

  private String describeAddress() {
    return connector.describeAddress();
  }

  // ---------------------------------------------------------------- request plumbing

  @FunctionalInterface
  private interface Exchange<T> {
    T run(Link link, Family family) throws IOException;
  }

  private <T> T call(String what, Exchange<T> exchange) {
    try {
      lock.lockInterruptibly();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new StoreException("interrupted before " + what, e);
    }
    try {
      if (closed) {
        throw new StoreException("the store client for " + describeAddress() + " is closed");
      }
      if (link == null) {
        link = connector.open(System.nanoTime() + timeout.toNanos());
        if (closed) {
          dropLink();
          throw new StoreException("the store client for " + describeAddress() + " is closed");
        }
      }
      link.readTimeout(timeout);
      T result = exchange.run(link, connector.family());
      answered = true;
      return result;
    } catch (SocketTimeoutException e) {
      dropLink();
      throw new StoreTimeoutException(failure(what, e), e);
    } catch (IOException e) {
      dropLink();
      throw new StoreException(failure(what, e), e);
    } finally {
      lock.unlock();
    }
  }

  private String failure(String what, IOException e) {
    String text = failure(what, connector, e);
    if (!answered
        && options.protocol() == StoreProtocol.V1_13
        && (e instanceof EOFException || e instanceof SocketException)) {
      // A 2.x server closes a connection whose first bytes are not its handshake.
      text +=
          "; the server closed the connection at the first 1.13 request, as a PyTorch 2.x server"
              + " does (it expects the 2.x handshake): set store_protocol=2, or auto to detect it";
    }
    return text;
  }

  /** {@code <what> on the store at host:port failed: <cause>}. */
  static String failure(String what, Connector connector, IOException e) {
    String cause = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    return what + " on the store at " + connector.describeAddress() + " failed: " + cause;
  }

  private void dropLink() {
    if (link != null) {
      link.close();
      link = null;
    }
  }

  private static String keysText(List<String> keys) {
    String s = keys.toString();
    return s.length() > 200 ? s.substring(0, 200) + "...]" : s;
  }

  private int code(Command command, Family f) {
    int c = command.code(f);
    if (c < 0) {
      throw new UnsupportedOperationException(
          command + " is not part of the " + f + " TCPStore protocol");
    }
    return c;
  }

  /**
   * Sends WAIT for {@code keys} and blocks for its answer up to {@code waitTimeout}, cancelling
   * (2.x) or dropping the connection (1.13) on timeout or interrupt. Caller holds the lock.
   */
  private void doWait(Link l, Family f, List<String> keys, Duration waitTimeout)
      throws IOException {
    frame.reset().u8(code(Command.WAIT, f)).i64(keys.size());
    for (String key : keys) {
      frame.userKey(key);
    }
    l.send(frame);
    long deadline = System.nanoTime() + waitTimeout.toNanos();
    while (true) {
      long left = deadline - System.nanoTime();
      boolean interrupted = Thread.currentThread().isInterrupted();
      if (left <= 0 || interrupted) {
        boolean arrived = abandonWait(l, f);
        if (arrived && !interrupted) {
          return;
        }
        if (interrupted) {
          throw new StoreException("interrupted while waiting for keys " + keysText(keys));
        }
        throw new StoreTimeoutException(
            "Wait timeout after " + waitTimeout.toMillis() + "ms, keys: " + keysText(keys));
      }
      l.readTimeout(Math.min(TimeUnit.NANOSECONDS.toMillis(left) + 1, WAIT_SLICE_MILLIS));
      try {
        int b = l.u8();
        if (b != Wire.STOP_WAITING) {
          throw new IOException("unexpected answer to WAIT: " + b);
        }
        l.readTimeout(timeout);
        return;
      } catch (SocketTimeoutException e) {
        // Slice over: look at the deadline and the interrupt flag again.
      } catch (InterruptedIOException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  /**
   * Gives up a pending WAIT. 2.x: CANCEL_WAIT, then {@code 01}, or {@code 00 01} when the keys
   * arrived meanwhile (returns true). 1.13 has no cancel: the connection is dropped so the late
   * {@code 00} cannot desynchronize a later request.
   */
  private boolean abandonWait(Link l, Family f) throws IOException {
    if (f == Family.V1) {
      dropLink();
      return false;
    }
    frame.reset().u8(Command.CANCEL_WAIT.code(Family.V2));
    l.send(frame);
    l.readTimeout(timeout);
    int b = l.u8();
    if (b == Wire.WAIT_CANCELED) {
      return false;
    }
    if (b == Wire.STOP_WAITING && l.u8() == Wire.WAIT_CANCELED) {
      return true;
    }
    throw new IOException("unexpected answer to CANCEL_WAIT");
  }

  // ---------------------------------------------------------------- Store

  @Override
  public void set(String key, byte[] value) {
    Objects.requireNonNull(value, "value");
    call(
        "SET",
        (l, f) -> {
          l.send(frame.reset().u8(code(Command.SET, f)).userKey(key).bytes(value));
          return null;
        });
  }

  @Override
  public byte[] get(String key) {
    Duration t = timeout;
    return call(
        "GET " + key,
        (l, f) -> {
          doWait(l, f, List.of(key), t);
          l.send(frame.reset().u8(code(Command.GET, f)).userKey(key));
          return l.bytes();
        });
  }

  @Override
  public long add(String key, long delta) {
    return call(
        "ADD",
        (l, f) -> {
          l.send(frame.reset().u8(code(Command.ADD, f)).userKey(key).i64(delta));
          return l.i64();
        });
  }

  @Override
  public byte[] compareSet(String key, byte[] expected, byte[] desired) {
    return call(
        "COMPARE_SET",
        (l, f) -> {
          l.send(
              frame
                  .reset()
                  .u8(code(Command.COMPARE_SET, f))
                  .userKey(key)
                  .bytes(expected)
                  .bytes(desired));
          return l.bytes();
        });
  }

  @Override
  public boolean check(List<String> keys) {
    return call(
        "CHECK",
        (l, f) -> {
          frame.reset().u8(code(Command.CHECK, f)).i64(keys.size());
          for (String key : keys) {
            frame.userKey(key);
          }
          l.send(frame);
          int b = l.u8();
          if (b != Wire.READY && b != Wire.NOT_READY) {
            throw new IOException("unexpected answer to CHECK: " + b);
          }
          return b == Wire.READY;
        });
  }

  @Override
  public void await(List<String> keys, Duration waitTimeout) {
    Objects.requireNonNull(waitTimeout, "timeout");
    List<String> copy = List.copyOf(keys);
    call(
        "WAIT",
        (l, f) -> {
          doWait(l, f, copy, waitTimeout);
          return null;
        });
  }

  @Override
  public long numKeys() {
    return call(
        "GETNUMKEYS",
        (l, f) -> {
          l.send(frame.reset().u8(code(Command.GETNUMKEYS, f)));
          return l.i64();
        });
  }

  @Override
  public boolean deleteKey(String key) {
    return call(
        "DELETE_KEY",
        (l, f) -> {
          l.send(frame.reset().u8(code(Command.DELETE_KEY, f)).userKey(key));
          return l.i64() == 1;
        });
  }

  @Override
  public void append(String key, byte[] value) {
    Objects.requireNonNull(value, "value");
    call(
        "APPEND",
        (l, f) -> {
          l.send(frame.reset().u8(code(Command.APPEND, f)).userKey(key).bytes(value));
          return null;
        });
  }

  @Override
  public List<byte[]> multiGet(List<String> keys) {
    List<String> copy = List.copyOf(keys);
    Duration t = timeout;
    return call(
        "MULTI_GET",
        (l, f) -> {
          doWait(l, f, copy, t);
          if (f == Family.V2) {
            frame.reset().u8(code(Command.MULTI_GET, f)).i64(copy.size());
            for (String key : copy) {
              frame.userKey(key);
            }
            l.send(frame);
          } else {
            // 1.13 has no MULTI_GET: pipeline one GET per key.
            frame.reset();
            for (String key : copy) {
              frame.u8(code(Command.GET, f)).userKey(key);
            }
            l.send(frame);
          }
          List<byte[]> values = new ArrayList<>(copy.size());
          for (int i = 0; i < copy.size(); i++) {
            values.add(l.bytes());
          }
          return values;
        });
  }

  @Override
  public void multiSet(List<String> keys, List<byte[]> values) {
    if (keys.size() != values.size()) {
      throw new IllegalArgumentException(
          "multiSet needs as many values as keys: "
              + keys.size()
              + " keys, "
              + values.size()
              + " values");
    }
    call(
        "MULTI_SET",
        (l, f) -> {
          frame.reset();
          if (f == Family.V2) {
            frame.u8(code(Command.MULTI_SET, f)).i64(keys.size());
            for (int i = 0; i < keys.size(); i++) {
              frame.userKey(keys.get(i)).bytes(values.get(i));
            }
          } else {
            // 1.13 has no MULTI_SET: one SET per pair, in one write.
            for (int i = 0; i < keys.size(); i++) {
              frame.u8(code(Command.SET, f)).userKey(keys.get(i)).bytes(values.get(i));
            }
          }
          l.send(frame);
          return null;
        });
  }

  @Override
  public Duration timeout() {
    return timeout;
  }

  @Override
  public void setTimeout(Duration timeout) {
    Objects.requireNonNull(timeout, "timeout");
    if (timeout.isNegative()) {
      throw new IllegalArgumentException("timeout must not be negative, got " + timeout);
    }
    this.timeout = timeout;
  }

  // ---------------------------------------------------------------- TcpStore

  @Override
  public StoreProtocol protocol() {
    Family f = connector.family();
    if (f == null) {
      call("connect", (l, fam) -> null);
      f = connector.family();
    }
    return f == Family.V1 ? StoreProtocol.V1_13 : StoreProtocol.V2;
  }

  @Override
  public TcpStoreOptions options() {
    return options;
  }

  @Override
  public void queuePush(String key, byte[] value) {
    Objects.requireNonNull(value, "value");
    call(
        "QUEUE_PUSH",
        (l, f) -> {
          l.send(frame.reset().u8(code(Command.QUEUE_PUSH, f)).userKey(key).bytes(value));
          return null;
        });
  }

  @Override
  public byte[] queuePop(String key, boolean block) {
    Duration t = timeout;
    return call(
        "QUEUE_POP",
        (l, f) -> {
          long deadline = System.nanoTime() + t.toNanos();
          while (true) {
            if (block) {
              doWait(
                  l, f, List.of(key), Duration.ofNanos(Math.max(0, deadline - System.nanoTime())));
            }
            l.send(frame.reset().u8(code(Command.QUEUE_POP, f)).userKey(key));
            long length = l.i64();
            if (length > 0) {
              return l.bytes();
            }
            if (!block) {
              return null;
            }
            // Another client took the element between our WAIT and POP: wait again.
          }
        });
  }

  @Override
  public long queueLen(String key) {
    return call(
        "QUEUE_LEN",
        (l, f) -> {
          l.send(frame.reset().u8(code(Command.QUEUE_LEN, f)).userKey(key));
          return l.i64();
        });
  }

  @Override
  public List<String> listKeys() {
    return call(
        "LIST",
        (l, f) -> {
          l.send(frame.reset().u8(code(Command.LIST, f)));
          long n = l.i64();
          List<String> keys = new ArrayList<>();
          for (long i = 0; i < n; i++) {
            String key = Frame.userKey(l.bytes());
            if (key != null) {
              keys.add(key);
            }
          }
          return keys;
        });
  }

  // ---------------------------------------------------------------- watching (1.13)

  @Override
  public AutoCloseable watchKey(String key, Consumer<WatchEvent> listener) {
    Objects.requireNonNull(key, "key");
    Objects.requireNonNull(listener, "listener");
    if (protocol() != StoreProtocol.V1_13) {
      throw new UnsupportedOperationException(
          "WATCH_KEY exists only in the 1.13 TCPStore protocol; this client speaks 2.x"
              + " (use store_protocol=1.13)");
    }
    return watches.watchKey(key, listener);
  }

  // ---------------------------------------------------------------- lifecycle

  @Override
  public void close() {
    closed = true;
    watches.close();
    // Closing the socket first releases a thread blocked in a wait; then take the lock to clear.
    Link l = link;
    if (l != null) {
      l.close();
    }
    connector.cancel();
    // A thread may hold the lock while it connects (bounded by the timeout): close without waiting
    // for it. It sees the client closed when it gets the lock and drops what it opened then.
    boolean locked = false;
    try {
      locked = lock.tryLock(CLOSE_WAIT_MILLIS, TimeUnit.MILLISECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (locked) {
      try {
        dropLink();
      } finally {
        lock.unlock();
      }
    }
  }

  /** How long {@link #close()} waits for a request in flight to release the connection. */
  private static final long CLOSE_WAIT_MILLIS = 1000;

  private void closeQuietly() {
    closed = true;
    dropLink();
  }

  @Override
  public String toString() {
    Family f = connector.family();
    return "TcpStore(" + describeAddress() + ", " + (f == null ? "auto" : f.toString()) + ")";
  }
}
