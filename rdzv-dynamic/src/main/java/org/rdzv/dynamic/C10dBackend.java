package org.rdzv.dynamic;

import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.Store;
import org.rdzv.api.StoreException;
import org.rdzv.api.StoreTimeoutException;
import org.rdzv.store.StoreProtocol;
import org.rdzv.store.TcpStore;
import org.rdzv.store.WatchEvent;

/**
 * PyTorch's {@code C10dRendezvousBackend}: the state is {@code base64(pickle)} under {@code
 * torch.rendezvous.<run_id>}, {@code Y2FuaW1hZGFt} means "no state", and the fencing token is the
 * whole previous value, compared by the store's COMPARE_SET.
 *
 * <p>Change signalling (not in PyTorch, invisible to it): on a 1.13-protocol {@link TcpStore} the
 * backend watches the state key (WATCH_KEY), which reports every write, PyTorch's included. On
 * other stores a Java writer that replaces value {@code T} sets {@code
 * torch.rendezvous.<run_id>.changed/<sha256(T)>}, and a waiter holding {@code T} blocks on that key
 * (WAIT, on a connection of its own); PyTorch writers set no such key, so waiters also give up
 * after the poll interval and read, as PyTorch nodes do.
 */
final class C10dBackend implements RendezvousBackend, AutoCloseable {
  private static final System.Logger LOG = System.getLogger(C10dBackend.class.getName());
  static final byte[] NULL_SENTINEL = "Y2FuaW1hZGFt".getBytes(StandardCharsets.US_ASCII);
  private static final String CONNECTION_FAILED =
      "The connection to the C10d store has failed. See inner exception for details.";
  private static final long NOTIFY_KEY_LIFETIME_NANOS = 10_000_000_000L;

  private final Store store;
  private final String runId;
  private final String key;

  // Watch mode (1.13 protocol).
  private final ReentrantLock watchLock = new ReentrantLock();
  private final Condition watchSignal = watchLock.newCondition();
  private AutoCloseable watch;
  private long eventSeq;
  private byte[] lastEventValue;
  private byte[] lastToken;
  private long lastTokenSeq;

  // Notification-key mode.
  private final boolean notifyKeys;
  private final ReentrantLock notifyLock = new ReentrantLock();
  private Store waitStore;
  private boolean ownsWaitStore;
  private byte[] lastSignalled;
  private final ArrayDeque<Object[]> setNotifyKeys = new ArrayDeque<>();

  C10dBackend(Store store, String runId, boolean signalChanges) {
    if (runId == null || runId.isEmpty()) {
      throw new IllegalArgumentException("The run id must be a non-empty string.");
    }
    this.store = store;
    this.runId = runId;
    this.key = C10dRendezvous.stateKey(runId);
    call(() -> store.compareSet(key, new byte[0], NULL_SENTINEL));
    boolean watching = false;
    if (signalChanges && store instanceof TcpStore tcp && tcp.protocol() == StoreProtocol.V1_13) {
      try {
        watch = tcp.watchKey(key, this::onEvent);
        watching = true;
      } catch (RuntimeException e) {
        LOG.log(Level.DEBUG, "rendezvous ''{0}'': cannot watch the state key ({1}); using notification keys", runId, e);
      }
    }
    this.notifyKeys = signalChanges && !watching;
  }

  @Override
  public String name() {
    return "c10d";
  }

  @Override
  public Optional<State> getState() {
    long seq = currentSeq();
    byte[] value = call(() -> store.get(key));
    remember(value, seq);
    return decode(value).map(bytes -> new State(bytes, value));
  }

  @Override
  public Optional<SetResult> setState(byte[] state, Object token) {
    byte[] expected;
    if (token == null) {
      expected = NULL_SENTINEL;
    } else if (token instanceof byte[] b) {
      expected = b;
    } else {
      return getState().map(s -> new SetResult(s.state(), s.token(), false));
    }
    byte[] desired = Base64.getEncoder().encode(state);
    long seq = currentSeq();
    byte[] stored = call(() -> store.compareSet(key, expected, desired));
    remember(stored, seq);
    boolean written = Arrays.equals(stored, desired);
    if (written && notifyKeys) {
      signal(expected);
    }
    return decode(stored).map(bytes -> new SetResult(bytes, stored, written));
  }

  private Optional<byte[]> decode(byte[] value) {
    if (Arrays.equals(value, NULL_SENTINEL)) {
      return Optional.empty();
    }
    try {
      return Optional.of(Base64.getDecoder().decode(value));
    } catch (IllegalArgumentException e) {
      throw new RendezvousStateException("The state object is corrupt. See inner exception for details.", e);
    }
  }

  private static <T> T call(java.util.function.Supplier<T> op) {
    try {
      return op.get();
    } catch (StoreException e) {
      throw new RendezvousConnectionException(CONNECTION_FAILED, e);
    }
  }

  // ---- change signalling

  @Override
  public boolean awaitChange(Object token, Duration timeout) throws InterruptedException {
    byte[] value = token instanceof byte[] b ? b : NULL_SENTINEL;
    if (watch != null) {
      return awaitEvent(value, timeout);
    }
    if (!notifyKeys) {
      Thread.sleep(timeout);
      return false;
    }
    return awaitNotifyKey(value, timeout);
  }

  private void onEvent(WatchEvent event) {
    watchLock.lock();
    try {
      eventSeq++;
      lastEventValue = event.newValue();
      watchSignal.signalAll();
    } finally {
      watchLock.unlock();
    }
  }

  private long currentSeq() {
    if (watch == null) {
      return 0;
    }
    watchLock.lock();
    try {
      return eventSeq;
    } finally {
      watchLock.unlock();
    }
  }

  private void remember(byte[] value, long seq) {
    if (watch == null) {
      return;
    }
    watchLock.lock();
    try {
      lastToken = value;
      lastTokenSeq = seq;
    } finally {
      watchLock.unlock();
    }
  }

  /** Waits for a watch event, after the read that produced {@code token}, to another value. */
  private boolean awaitEvent(byte[] token, Duration timeout) throws InterruptedException {
    long nanos = timeout.toNanos();
    watchLock.lock();
    try {
      long since = token == lastToken ? lastTokenSeq : eventSeq;
      while (!(eventSeq > since && !Arrays.equals(lastEventValue, token))) {
        if (nanos <= 0) {
          return false;
        }
        nanos = watchSignal.awaitNanos(nanos);
      }
      return true;
    } finally {
      watchLock.unlock();
    }
  }

  static String notifyKey(String runId, byte[] token) {
    try {
      byte[] digest = MessageDigest.getInstance("SHA-256").digest(token);
      return "torch.rendezvous." + runId + ".changed/" + HexFormat.of().formatHex(digest, 0, 16);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  private void signal(byte[] replaced) {
    try {
      store.set(notifyKey(runId, replaced), new byte[] {'1'});
      long now = System.nanoTime();
      List<String> expired = new java.util.ArrayList<>();
      notifyLock.lock();
      try {
        setNotifyKeys.addLast(new Object[] {notifyKey(runId, replaced), now});
        while (!setNotifyKeys.isEmpty() && now - (long) setNotifyKeys.peekFirst()[1] > NOTIFY_KEY_LIFETIME_NANOS) {
          expired.add((String) setNotifyKeys.pollFirst()[0]);
        }
      } finally {
        notifyLock.unlock();
      }
      for (String k : expired) {
        store.deleteKey(k);
      }
    } catch (StoreException e) {
      // Only a hint for other Java nodes; they fall back to polling.
      LOG.log(Level.DEBUG, "rendezvous ''{0}'': cannot set a change notification: {1}", runId, e);
    }
  }

  private boolean awaitNotifyKey(byte[] token, Duration timeout) throws InterruptedException {
    Store waiter;
    notifyLock.lock();
    try {
      if (Arrays.equals(token, lastSignalled)) {
        // The state came back to a value seen before (ABA): its key exists, so waiting on it
        // would return at once forever. Poll for this value instead.
        waiter = null;
      } else {
        waiter = waitStore();
      }
    } finally {
      notifyLock.unlock();
    }
    if (waiter == null) {
      Thread.sleep(timeout);
      return false;
    }
    long start = System.nanoTime();
    try {
      waiter.await(List.of(notifyKey(runId, token)), timeout);
      notifyLock.lock();
      try {
        lastSignalled = token;
      } finally {
        notifyLock.unlock();
      }
      return true;
    } catch (StoreTimeoutException e) {
      return false;
    } catch (StoreException e) {
      if (Thread.currentThread().isInterrupted()) {
        throw new InterruptedException();
      }
      long left = timeout.toNanos() - (System.nanoTime() - start);
      if (left > 0) {
        Thread.sleep(Duration.ofNanos(left));
      }
      return false;
    }
  }

  /** A connection of its own for blocking waits, so that they do not hold the shared one. */
  private Store waitStore() {
    if (waitStore == null) {
      if (store instanceof TcpStore tcp) {
        try {
          waitStore = TcpStore.connect(tcp.options().toBuilder().protocol(tcp.protocol()).build());
          ownsWaitStore = true;
        } catch (StoreException e) {
          waitStore = store;
        }
      } else {
        waitStore = store;
      }
    }
    return waitStore;
  }

  @Override
  public void close() {
    if (watch != null) {
      try {
        watch.close();
      } catch (Exception e) {
        LOG.log(Level.DEBUG, "closing the watch failed: {0}", e);
      }
    }
    notifyLock.lock();
    try {
      if (ownsWaitStore && waitStore != null) {
        waitStore.close();
      }
      waitStore = null;
    } finally {
      notifyLock.unlock();
    }
  }
}
