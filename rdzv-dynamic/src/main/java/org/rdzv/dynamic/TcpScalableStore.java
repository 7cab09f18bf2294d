package org.rdzv.dynamic;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.Store;
import org.rdzv.api.StoreException;
import org.rdzv.dynamic.spi.ScalableStore;
import org.rdzv.store.StoreProtocol;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreOptions;
import org.rdzv.store.WatchEvent;

/**
 * The scalable protocol's operations on a PyTorch TCPStore (the {@code c10d} backend), with nothing
 * beyond PyTorch's commands, so any TCPStore server works: sequences and claims are counters (ADD),
 * a non-blocking read is a COMPARE_SET that cannot match, and waits are WATCH_KEY registrations on
 * one callback connection (our server and PyTorch 1.13's; on a server without it, each wait holds a
 * connection of its own).
 *
 * <p>Handlers of one process that use the same store share one {@link Session}: a few connections
 * for operations and one for watches, so ten thousand nodes in one JVM need a handful of sockets.
 * Keys live under {@code rdzv/v1/<E(run)>/scalable/}.
 */
final class TcpScalableStore implements ScalableStore {
  /** A sealed sequence's counter is at least this. */
  static final long SEALED = 1L << 40;

  /** A value no key of ours holds: a COMPARE_SET expecting it reads without writing. */
  private static final byte[] ABSENT = "\u0000rdzv:absent\u0000".getBytes(StandardCharsets.UTF_8);

  private static final byte[] ONE = "1".getBytes(StandardCharsets.UTF_8);

  private final Session session;
  private final String prefix;
  private final String runId;
  private final LazyStore workers;
  private volatile boolean closed;

  private final AutoCloseable owned;

  private TcpScalableStore(Session session, String runId, AutoCloseable owned) {
    this.session = session;
    this.owned = owned;
    this.runId = runId;
    this.prefix = RendezvousKeys.of(runId).ownPrefix(RendezvousKeys.Own.SCALABLE);
    this.workers = new LazyStore(session.options);
  }

  /**
   * A handle on the shared session for {@code options}' server, for run {@code runId}; closing it
   * also closes {@code owned} (a server the handler hosts), if not null.
   */
  static TcpScalableStore open(
      TcpStoreOptions options, String runId, int connections, AutoCloseable owned) {
    return new TcpScalableStore(Session.acquire(options, connections), runId, owned);
  }

  private String k(String key) {
    return prefix + key;
  }

  @Override
  public String describe() {
    return "the TCP store at " + session.options.host() + ":" + session.options.port();
  }

  @Override
  public long enter(String key) {
    long v = session.ops().add(k(key), 1);
    return v < SEALED ? v : -1;
  }

  @Override
  public long seal(String key) {
    long v = session.ops().add(k(key), SEALED);
    if (v >= 2 * SEALED) {
      return -1;
    }
    long entries = v - SEALED;
    session.ops().set(k(key) + "#sealed", Long.toString(entries).getBytes(StandardCharsets.UTF_8));
    return entries;
  }

  @Override
  public Tally tally(String key) {
    long v = session.ops().add(k(key), 0);
    if (v < SEALED) {
      return new Tally(v, false);
    }
    byte[] sealedAt = get(key + "#sealed");
    long entries =
        sealedAt != null
            ? Long.parseLong(new String(sealedAt, StandardCharsets.UTF_8))
            : v % SEALED;
    return new Tally(entries, true);
  }

  @Override
  public boolean claim(String key) {
    return session.ops().add(k(key), 1) == 1;
  }

  @Override
  public boolean claimed(String key) {
    return session.ops().add(k(key), 0) >= 1;
  }

  @Override
  public void set(String key, byte[] value) {
    session.ops().set(k(key), value);
  }

  @Override
  public byte[] get(String key) {
    return read(session.ops(), k(key));
  }

  private static byte[] read(Store ops, String wire) {
    byte[] v = ops.compareSet(wire, ABSENT, ABSENT);
    return Arrays.equals(v, ABSENT) ? null : v;
  }

  @Override
  public List<byte[]> getAll(List<String> keys) {
    List<String> wire = new ArrayList<>(keys.size());
    keys.forEach(key -> wire.add(k(key)));
    Store ops = session.ops();
    if (ops.check(wire)) {
      return new ArrayList<>(ops.multiGet(wire));
    }
    List<byte[]> out = new ArrayList<>(keys.size());
    for (String w : wire) {
      out.add(read(ops, w));
    }
    return out;
  }

  @Override
  public void setAll(List<String> keys, List<byte[]> values) {
    List<String> wire = new ArrayList<>(keys.size());
    keys.forEach(key -> wire.add(k(key)));
    session.ops().multiSet(wire, values);
  }

  @Override
  public long add(String key, long delta) {
    return session.ops().add(k(key), delta);
  }

  @Override
  public byte[] await(String key, Duration timeout) throws InterruptedException {
    String wire = k(key);
    byte[] now;
    TcpStore watcher = session.watcher(wire);
    if (watcher == null) {
      return awaitOnOwnConnection(wire, timeout);
    }
    CompletableFuture<byte[]> seen = new CompletableFuture<>();
    AutoCloseable registration;
    try {
      registration =
          watcher.watchKey(
              wire,
              e -> {
                if (e.type() != WatchEvent.Type.KEY_DELETED && e.newValue() != null) {
                  seen.complete(e.newValue());
                }
              });
    } catch (StoreException | UnsupportedOperationException e) {
      return awaitOnOwnConnection(wire, timeout);
    }
    try {
      now = read(session.ops(), wire); // set before the registration took effect
      if (now != null) {
        return now;
      }
      return seen.get(Math.max(1, timeout.toNanos()), TimeUnit.NANOSECONDS);
    } catch (TimeoutException e) {
      return read(session.ops(), wire);
    } catch (ExecutionException e) {
      throw new StoreException("watching " + key + " failed", e.getCause());
    } finally {
      try {
        registration.close();
      } catch (Exception ignored) {
        // a closed handle only stops delivery
      }
    }
  }

  private byte[] awaitOnOwnConnection(String wire, Duration timeout) {
    try (TcpStore own =
        TcpStore.connect(
            TcpStoreOptions.builder(session.options.host(), session.options.port())
                .timeout(session.options.timeout())
                .protocol(session.options.protocol())
                .build())) {
      own.await(List.of(wire), timeout);
      return own.get(wire);
    } catch (org.rdzv.api.StoreTimeoutException e) {
      return null;
    }
  }

  @Override
  public void beat(String key) {
    session.ops().add(k(key), 1);
  }

  @Override
  public long beats(String key) {
    return session.ops().add(k(key), 0);
  }

  @Override
  public Optional<byte[]> compatibleState() {
    return C10dBackend.peek(session.ops(), runId);
  }

  @Override
  public boolean fenceCompatible(byte[] closedState) {
    // Once per run id and process: the fence, once written, stays.
    if (session.fenced.contains(runId)) {
      return true;
    }
    C10dBackend backend = new C10dBackend(session.ops(), runId, false);
    boolean written = backend.setState(closedState, null).map(r -> r.written()).orElse(false);
    if (written || compatibleState().map(ScalableHandler::isFence).orElse(false)) {
      session.fenced.add(runId);
      return true;
    }
    return false;
  }

  @Override
  public Store store() {
    return workers;
  }

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    workers.close();
    session.release();
    if (owned != null) {
      try {
        owned.close();
      } catch (Exception ignored) {
        // a hosted server that fails to stop has nothing left to lose
      }
    }
  }

  // ---- sharing

  /** What handlers of one process share per store server: operation connections and a watcher. */
  static final class Session {
    private static final Map<String, Session> SESSIONS = new HashMap<>();

    final TcpStoreOptions options;
    private final String id;
    private final TcpStore[] ops;
    private final AtomicInteger next = new AtomicInteger();
    final java.util.Set<String> fenced = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private int users;
    private final TcpStore[] watchers = new TcpStore[WATCHERS];
    private final boolean[] watcherTried = new boolean[WATCHERS];
    private static final int WATCHERS = 4;

    private Session(String id, TcpStoreOptions options, TcpStore[] ops) {
      this.id = id;
      this.options = options;
      this.ops = ops;
    }

    static Session acquire(TcpStoreOptions options, int connections) {
      String id =
          options.host()
              + ":"
              + options.port()
              + "/"
              + options.protocol()
              + "/"
              + options.timeout();
      synchronized (SESSIONS) {
        Session s = SESSIONS.get(id);
        if (s == null) {
          TcpStore[] ops = new TcpStore[Math.max(1, connections)];
          try {
            for (int i = 0; i < ops.length; i++) {
              ops[i] = TcpStore.connect(options);
            }
          } catch (StoreException e) {
            for (TcpStore o : ops) {
              if (o != null) {
                o.close();
              }
            }
            throw new RendezvousConnectionException(C10dBackend.CONNECTION_FAILED, e);
          }
          s = new Session(id, options, ops);
          SESSIONS.put(id, s);
        }
        s.users++;
        return s;
      }
    }

    Store ops() {
      return ops[Math.floorMod(next.getAndIncrement(), ops.length)];
    }

    /** The shared 1.13 client whose callback connection carries watches of {@code key}, or null. */
    synchronized TcpStore watcher(String key) {
      int i = Math.floorMod(key.hashCode(), WATCHERS);
      if (!watcherTried[i]) {
        watcherTried[i] = true;
        try {
          watchers[i] =
              TcpStore.connect(
                  TcpStoreOptions.builder(options.host(), options.port())
                      .timeout(options.timeout())
                      .protocol(StoreProtocol.V1_13)
                      .build());
        } catch (StoreException | IllegalArgumentException e) {
          watchers[i] = null;
        }
      }
      return watchers[i];
    }

    void release() {
      synchronized (SESSIONS) {
        if (--users > 0) {
          return;
        }
        SESSIONS.remove(id);
      }
      for (TcpStore o : ops) {
        o.close();
      }
      synchronized (this) {
        for (TcpStore w : watchers) {
          if (w != null) {
            w.close();
          }
        }
      }
    }
  }

  /** The workers' store of a handler: its own connection, opened on first use. */
  private static final class LazyStore implements Store {
    private final TcpStoreOptions options;
    private TcpStore store;
    private boolean closed;

    LazyStore(TcpStoreOptions options) {
      this.options = options;
    }

    private synchronized TcpStore s() {
      if (closed) {
        throw new StoreException("the store client is closed");
      }
      if (store == null) {
        store = TcpStore.connect(options);
      }
      return store;
    }

    @Override
    public void set(String key, byte[] value) {
      s().set(key, value);
    }

    @Override
    public byte[] get(String key) {
      return s().get(key);
    }

    @Override
    public long add(String key, long delta) {
      return s().add(key, delta);
    }

    @Override
    public byte[] compareSet(String key, byte[] expected, byte[] desired) {
      return s().compareSet(key, expected, desired);
    }

    @Override
    public boolean check(List<String> keys) {
      return s().check(keys);
    }

    @Override
    public void await(List<String> keys, Duration timeout) {
      s().await(keys, timeout);
    }

    @Override
    public long numKeys() {
      return s().numKeys();
    }

    @Override
    public boolean deleteKey(String key) {
      return s().deleteKey(key);
    }

    @Override
    public void append(String key, byte[] value) {
      s().append(key, value);
    }

    @Override
    public List<byte[]> multiGet(List<String> keys) {
      return s().multiGet(keys);
    }

    @Override
    public void multiSet(List<String> keys, List<byte[]> values) {
      s().multiSet(keys, values);
    }

    @Override
    public Duration timeout() {
      return options.timeout();
    }

    @Override
    public void setTimeout(Duration timeout) {
      s().setTimeout(timeout);
    }

    @Override
    public synchronized void close() {
      closed = true;
      if (store != null) {
        store.close();
        store = null;
      }
    }
  }
}
