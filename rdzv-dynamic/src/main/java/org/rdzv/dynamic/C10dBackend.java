package org.rdzv.dynamic;

import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.Base64;
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
 * <p>Change signalling between Java nodes (not in PyTorch, invisible to it): a Java node that
 * writes a <em>significant</em> change increments the counter {@code rdzv/v1/<E(run_id)>/epoch} to
 * {@code n} and sets {@code rdzv/v1/<E(run_id)>/changed/<n>} (keys of {@link RendezvousKeys}). A
 * waiting node knows the epoch {@code e} it read before its state and waits for {@code e+1}: on the
 * 1.13 protocol by watching the counter (WATCH_KEY), otherwise with a blocking WAIT on {@code
 * changed/<e+1>} over a connection of its own. PyTorch writers do not signal, so waiters give up
 * after at most the poll interval and read, as PyTorch nodes do.
 */
final class C10dBackend implements RendezvousBackend, AutoCloseable {
  private static final System.Logger LOG = System.getLogger(C10dBackend.class.getName());
  static final byte[] NULL_SENTINEL = "Y2FuaW1hZGFt".getBytes(StandardCharsets.US_ASCII);
  private static final String CONNECTION_FAILED =
      "The connection to the C10d store has failed. See inner exception for details.";

  /** How many {@code changed/<n>} keys stay before the writer of a newer one deletes them. */
  private static final long NOTIFY_WINDOW = 64;

  /** The fencing token: the raw value read (PyTorch's token) and the epoch known before it. */
  record Token(byte[] value, long epoch) {}

  private final Store store;
  private final String runId;
  private final RendezvousKeys keys;
  private final String key;
  private final String epochKey;
  private final boolean signal;
  private volatile long signalling;
  private volatile long signallingReadAt = System.nanoTime();

  // Watch mode (1.13 protocol): the highest epoch seen in events.
  private final ReentrantLock watchLock = new ReentrantLock();
  private final Condition watchSignal = watchLock.newCondition();
  private AutoCloseable watch;
  private long watchedEpoch;

  // Wait mode: a connection of its own for blocking waits.
  private final ReentrantLock waitLock = new ReentrantLock();
  private Store waitStore;
  private boolean ownsWaitStore;

  C10dBackend(Store store, String runId, boolean signalChanges) {
    this.keys = RendezvousKeys.of(runId);
    this.store = store;
    this.runId = runId;
    this.key = keys.state();
    // rdzv's own keys live outside PyTorch's (RendezvousKeys): once they were the state key plus
    // a suffix, which is the state key of another run id ("job" + ".epoch" is "job.epoch").
    this.epochKey = keys.own(RendezvousKeys.Own.EPOCH);
    this.signal = signalChanges;
    call(() -> store.compareSet(key, new byte[0], NULL_SENTINEL));
    if (signalChanges) {
      // Count this node among those that signal (never decremented: an upper bound).
      try {
        signalling = store.add(keys.own(RendezvousKeys.Own.SIGNALLING), 1);
      } catch (StoreException e) {
        signalling = 0;
      }
    }
    if (signalChanges && store instanceof TcpStore tcp && tcp.protocol() == StoreProtocol.V1_13) {
      try {
        watch = tcp.watchKey(epochKey, this::onEvent);
      } catch (RuntimeException e) {
        LOG.log(
            Level.DEBUG,
            "rendezvous ''{0}'': cannot watch ({1}); waiting on keys instead",
            runId,
            e);
      }
    }
  }

  @Override
  public String name() {
    return "c10d";
  }

  @Override
  public long signallingNodes() {
    long now = System.nanoTime();
    if (signal && now - signallingReadAt > 1_000_000_000L) {
      signallingReadAt = now;
      try {
        signalling = store.add(keys.own(RendezvousKeys.Own.SIGNALLING), 0);
      } catch (StoreException e) {
        signalling = 0;
      }
    }
    return signalling;
  }

  /**
   * Reads the state value. PyTorch's {@code get} is a WAIT and a GET; on a TCP store a COMPARE_SET
   * from the sentinel to the sentinel returns the current value in one round trip and changes
   * nothing (the key always exists: the constructor created it).
   */
  private byte[] read() {
    if (store instanceof TcpStore) {
      return store.compareSet(key, NULL_SENTINEL, NULL_SENTINEL);
    }
    return store.get(key);
  }

  @Override
  public Optional<State> getState() {
    long epoch = knownEpoch();
    byte[] value = call(() -> read());
    return decode(value).map(bytes -> new State(bytes, new Token(value, epoch)));
  }

  @Override
  public Optional<SetResult> setState(byte[] state, Object token) {
    return setState(state, token, true);
  }

  @Override
  public Optional<SetResult> setState(byte[] state, Object token, boolean significant) {
    byte[] expected;
    long epoch;
    if (token == null) {
      expected = NULL_SENTINEL;
      epoch = knownEpoch();
    } else if (token instanceof Token t) {
      expected = t.value();
      epoch = t.epoch();
    } else {
      return getState().map(s -> new SetResult(s.state(), s.token(), false));
    }
    byte[] desired = Base64.getEncoder().encode(state);
    byte[] stored = call(() -> store.compareSet(key, expected, desired));
    boolean written = Arrays.equals(stored, desired);
    if (written && significant && signal) {
      long n = announce();
      // Our own announcement is no news to us, unless another one slipped in between.
      if (n == epoch + 1) {
        epoch = n;
      }
    }
    long tokenEpoch = epoch;
    return decode(stored)
        .map(bytes -> new SetResult(bytes, new Token(stored, tokenEpoch), written));
  }

  /**
   * Reads the state of {@code runId} from {@code store} without writing anything (not even the
   * sentinel the constructor writes): empty when the key is missing or holds the sentinel.
   *
   * @throws RendezvousConnectionException if the store fails
   * @throws RendezvousStateException if the value is not base64
   */
  static Optional<byte[]> peek(Store store, String runId) {
    String key = RendezvousKeys.of(runId).state();
    byte[] value =
        call(
            () -> {
              // CHECK first: a GET of a missing key would block for the store's timeout.
              if (!store.check(List.of(key))) {
                return NULL_SENTINEL;
              }
              return store.get(key);
            });
    return decode(value);
  }

  private static Optional<byte[]> decode(byte[] value) {
    if (Arrays.equals(value, NULL_SENTINEL)) {
      return Optional.empty();
    }
    try {
      return Optional.of(Base64.getDecoder().decode(value));
    } catch (IllegalArgumentException e) {
      throw new RendezvousStateException(
          "The state object is corrupt. See inner exception for details.", e);
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

  /** The epoch to pair with a state about to be read: a lower bound of the current one. */
  private long knownEpoch() {
    if (!signal) {
      return 0;
    }
    if (watch != null) {
      watchLock.lock();
      try {
        return watchedEpoch;
      } finally {
        watchLock.unlock();
      }
    }
    try {
      return store.add(epochKey, 0);
    } catch (StoreException e) {
      return 0;
    }
  }

  private long announce() {
    try {
      long n = store.add(epochKey, 1);
      store.set(changedKey(n), new byte[] {'1'});
      if (n > NOTIFY_WINDOW) {
        store.deleteKey(changedKey(n - NOTIFY_WINDOW));
      }
      return n;
    } catch (StoreException e) {
      // Only a hint for other Java nodes; they fall back to polling.
      LOG.log(Level.DEBUG, "rendezvous ''{0}'': cannot signal a change: {1}", runId, e);
      return -1;
    }
  }

  @Override
  public Turn awaitTurn(Duration timeout, NodeDescriptor joining) throws InterruptedException {
    if (!signal) {
      return Turn.NONE;
    }
    long ticket;
    try {
      ticket = store.add(keys.own(RendezvousKeys.Own.TURNS), 1);
      if (joining != null) {
        store.set(queueKey(ticket), joining.toString().getBytes(StandardCharsets.UTF_8));
      }
    } catch (StoreException e) {
      return Turn.NONE;
    }
    if (ticket > 1) {
      Store waiter;
      waitLock.lock();
      try {
        waiter = waitStore();
      } finally {
        waitLock.unlock();
      }
      long passedBefore = -1;
      while (true) {
        try {
          waiter.await(List.of(turnKey(ticket)), timeout);
          break;
        } catch (StoreTimeoutException e) {
          // A long queue is fine while it moves; if no turn was passed on for a whole timeout,
          // the writer before us died or lingers: go ahead, the token still fences our write.
          long passed = store.add(keys.own(RendezvousKeys.Own.PASSED), 0);
          if (passed == passedBefore) {
            break;
          }
          passedBefore = passed;
        } catch (StoreException e) {
          if (Thread.currentThread().isInterrupted()) {
            throw new InterruptedException();
          }
          break;
        }
      }
    }
    return new TicketTurn(ticket);
  }

  /** Joiners a turn holder may add with its own write, at most. */
  private static final int MAX_BATCH = 256;

  private final class TicketTurn implements Turn {
    private final long ticket;
    private List<NodeDescriptor> joiners;
    private int admitted;
    private boolean passed;

    TicketTurn(long ticket) {
      this.ticket = ticket;
    }

    @Override
    public List<NodeDescriptor> waitingJoiners() {
      if (joiners != null) {
        return joiners;
      }
      joiners = new java.util.ArrayList<>();
      try {
        long last = Math.min(store.add(keys.own(RendezvousKeys.Own.TURNS), 0), ticket + MAX_BATCH);
        // The contiguous run of queued joiners right behind us (a ticket without a queue entry
        // wants something else, or has not registered yet: stop there).
        List<String> keys = new java.util.ArrayList<>();
        for (long t = ticket + 1; t <= last; t++) {
          if (!store.check(List.of(queueKey(t)))) {
            break;
          }
          keys.add(queueKey(t));
        }
        if (!keys.isEmpty()) {
          for (byte[] value : store.multiGet(keys)) {
            var n = NodeDescriptor.parse(new String(value, StandardCharsets.UTF_8));
            if (n.isEmpty()) {
              break;
            }
            joiners.add(n.get());
          }
        }
      } catch (StoreException e) {
        LOG.log(Level.DEBUG, "rendezvous ''{0}'': cannot read the join queue: {1}", runId, e);
      }
      return joiners;
    }

    @Override
    public void admitted(int count) {
      admitted = Math.max(0, Math.min(count, joiners == null ? 0 : joiners.size()));
    }

    @Override
    public void close() {
      if (passed) {
        return;
      }
      passed = true;
      try {
        // Joiners this write admitted need no turn of their own: wake them all (they re-read and
        // find themselves in), and pass the turn to the first ticket after them.
        for (long t = ticket + 1; t <= ticket + admitted + 1; t++) {
          store.set(turnKey(t), new byte[] {'1'});
        }
        store.add(keys.own(RendezvousKeys.Own.PASSED), 1 + admitted);
        if (ticket > NOTIFY_WINDOW) {
          store.deleteKey(turnKey(ticket - NOTIFY_WINDOW));
          store.deleteKey(queueKey(ticket - NOTIFY_WINDOW));
        }
      } catch (StoreException e) {
        LOG.log(Level.DEBUG, "rendezvous ''{0}'': cannot pass the turn on: {1}", runId, e);
      }
    }
  }

  private String queueKey(long ticket) {
    return keys.own(RendezvousKeys.Own.QUEUE, ticket);
  }

  private String turnKey(long ticket) {
    return keys.own(RendezvousKeys.Own.TURN, ticket);
  }

  String changedKey(long n) {
    return keys.own(RendezvousKeys.Own.CHANGED, n);
  }

  @Override
  public boolean awaitChange(Object token, Duration timeout) throws InterruptedException {
    long epoch = token instanceof Token t ? t.epoch() : knownEpoch();
    if (!signal) {
      Thread.sleep(timeout);
      return false;
    }
    return watch != null ? awaitEvent(epoch, timeout) : awaitKey(epoch, timeout);
  }

  private void onEvent(WatchEvent event) {
    long n;
    try {
      n = Long.parseLong(new String(event.newValue(), StandardCharsets.US_ASCII).strip());
    } catch (NumberFormatException e) {
      return;
    }
    watchLock.lock();
    try {
      if (n > watchedEpoch) {
        watchedEpoch = n;
        watchSignal.signalAll();
      }
    } finally {
      watchLock.unlock();
    }
  }

  private boolean awaitEvent(long epoch, Duration timeout) throws InterruptedException {
    long nanos = timeout.toNanos();
    watchLock.lock();
    try {
      while (watchedEpoch <= epoch) {
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

  private boolean awaitKey(long epoch, Duration timeout) throws InterruptedException {
    Store waiter;
    waitLock.lock();
    try {
      waiter = waitStore();
    } finally {
      waitLock.unlock();
    }
    long start = System.nanoTime();
    try {
      waiter.await(List.of(changedKey(epoch + 1)), timeout);
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
    waitLock.lock();
    try {
      if (ownsWaitStore && waitStore != null) {
        waitStore.close();
      }
      waitStore = null;
    } finally {
      waitLock.unlock();
    }
  }
}
