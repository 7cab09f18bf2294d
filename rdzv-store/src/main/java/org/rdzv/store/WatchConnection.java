package org.rdzv.store;

import java.io.EOFException;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.lang.System.Logger.Level;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
import java.util.function.Supplier;
import org.rdzv.api.StoreException;

/**
 * The 1.13 protocol's watch connection of a {@link TcpStoreClient}: a second socket, opened on the
 * first {@link #watchKey}, that carries WATCH_KEY registrations out and acknowledgements and events
 * in, read by a daemon thread that calls the listeners. A broken connection is replaced, and every
 * key registered again, by the next {@link #watchKey}. Thread-safe.
 */
final class WatchConnection {
  private static final System.Logger LOG = System.getLogger(TcpStore.class.getName());

  private final Connector connector;
  private final Supplier<Duration> timeout;
  private final ReentrantLock watchLock = new ReentrantLock();
  private final ConcurrentHashMap<String, CopyOnWriteArrayList<Consumer<WatchEvent>>> listeners =
      new ConcurrentHashMap<>();
  private WatchLink watchLink;
  private volatile boolean closed;

  /**
   * @param timeout the client's current timeout: for connecting and for each acknowledgement
   */
  WatchConnection(Connector connector, Supplier<Duration> timeout) {
    this.connector = connector;
    this.timeout = timeout;
  }

  /** See {@link TcpStore#watchKey}. */
  AutoCloseable watchKey(String key, Consumer<WatchEvent> listener) {
    Objects.requireNonNull(key, "key");
    Objects.requireNonNull(listener, "listener");
    String wire = Request.key(Frame.wireKey(key));
    watchLock.lock();
    try {
      if (closed) {
        throw new StoreException(
            "the store client for " + connector.describeAddress() + " is closed");
      }
      WatchLink w = watchLink;
      if (w == null || w.dead) {
        if (w != null) {
          w.close();
        }
        w = new WatchLink();
        watchLink = w;
        for (var entry : listeners.entrySet()) {
          if (!entry.getValue().isEmpty()) {
            w.register(entry.getKey());
          }
        }
      }
      CopyOnWriteArrayList<Consumer<WatchEvent>> list =
          listeners.computeIfAbsent(wire, k -> new CopyOnWriteArrayList<>());
      list.add(listener);
      if (!w.registered.contains(wire)) {
        w.register(wire);
      }
      return () -> list.remove(listener);
    } catch (IOException e) {
      WatchLink w = watchLink;
      if (w != null) {
        w.close();
      }
      throw new StoreException(TcpStoreClient.failure("WATCH_KEY " + key, connector, e), e);
    } finally {
      watchLock.unlock();
    }
  }

  /** One callback connection: WATCH_KEY registrations out, acks and events in. */
  private final class WatchLink {
    final Link link;
    final java.util.Set<String> registered = ConcurrentHashMap.newKeySet();
    final Semaphore acks = new Semaphore(0);
    final Thread reader;
    volatile boolean dead;
    private final Frame out = new Frame();

    WatchLink() throws IOException {
      link = connector.openAny(System.nanoTime() + timeout.get().toNanos());
      link.socket.setSoTimeout(0);
      reader =
          Thread.ofPlatform()
              .daemon()
              .name("rdzv-store-watch-" + connector.describeAddress())
              .start(this::readLoop);
    }

    /** Sends WATCH_KEY and waits for its acknowledgement. Caller holds the watch lock. */
    void register(String wireKey) throws IOException {
      link.send(out.reset().u8(Command.WATCH_KEY.code(Family.V1)).bytes(Request.keyBytes(wireKey)));
      try {
        if (!acks.tryAcquire(timeout.get().toNanos(), TimeUnit.NANOSECONDS)) {
          dead = true;
          throw new SocketTimeoutException("no acknowledgement of WATCH_KEY");
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        dead = true;
        throw new InterruptedIOException("interrupted while registering a watch");
      }
      if (dead) {
        throw new EOFException("the callback connection closed");
      }
      registered.add(wireKey);
    }

    private void readLoop() {
      try {
        while (true) {
          int type = link.u8();
          if (type == Wire.KEY_CALLBACK_REGISTERED) {
            acks.release();
            continue;
          }
          WatchEvent.Type t = WatchEvent.Type.of(type);
          if (t == null) {
            throw new IOException("unknown watch event type " + type);
          }
          byte[] wireKey = link.bytes();
          byte[] old = link.bytes();
          byte[] now = link.bytes();
          dispatch(t, wireKey, old, now);
        }
      } catch (IOException e) {
        if (!closed && !dead) {
          LOG.log(
              Level.WARNING,
              "the watch connection to {0} broke: {1}",
              connector.describeAddress(),
              e.getMessage());
        }
      } finally {
        dead = true;
        acks.release();
        link.close();
      }
    }

    private void dispatch(WatchEvent.Type type, byte[] wireKey, byte[] old, byte[] now) {
      var list = listeners.get(Request.key(wireKey));
      if (list == null || list.isEmpty()) {
        return;
      }
      String userKey = Frame.userKey(wireKey);
      WatchEvent event =
          new WatchEvent(
              type,
              userKey == null ? new String(wireKey, StandardCharsets.UTF_8) : userKey,
              old,
              now);
      for (Consumer<WatchEvent> l : list) {
        try {
          l.accept(event);
        } catch (RuntimeException e) {
          LOG.log(Level.WARNING, "a watch listener of " + event.key() + " failed", e);
        }
      }
    }

    void close() {
      dead = true;
      link.close();
    }
  }

  /** Closes the connection; later {@link #watchKey} calls fail. Idempotent. */
  void close() {
    closed = true;
    watchLock.lock();
    try {
      if (watchLink != null) {
        watchLink.close();
        watchLink = null;
      }
    } finally {
      watchLock.unlock();
    }
  }
}
