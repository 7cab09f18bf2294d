package org.rdzv.dynamic;

import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import org.rdzv.api.Store;
import org.rdzv.api.StoreException;
import org.rdzv.api.StoreTimeoutException;
import org.rdzv.store.StoreProtocol;
import org.rdzv.store.TcpStore;
import org.rdzv.store.WatchEvent;

/**
 * rdzv's change signal between Java nodes of a c10d rendezvous (not in PyTorch, invisible to it),
 * beside {@link C10dBackend}'s PyTorch state.
 *
 * <p>A Java node that writes a <em>significant</em> change increments the counter {@code
 * rdzv/v1/<E(run_id)>/epoch} to {@code n} and sets {@code rdzv/v1/<E(run_id)>/changed/<n>} ({@link
 * #announce()}; keys of {@link RendezvousKeys}, outside PyTorch's and another run id's). A waiting
 * node knows the epoch {@code e} it read before its state and waits for {@code e+1} ({@link
 * #await}): on the 1.13 protocol by watching the counter (WATCH_KEY), otherwise with a blocking
 * WAIT on {@code changed/<e+1>} over a connection of its own ({@link #waiter()}, which the turn
 * queue shares). Each signalling node counts itself once in {@code rdzv/v1/<E(run_id)>/signalling}.
 * PyTorch writers do not signal, so waiters give up after at most the poll interval and read, as
 * PyTorch nodes do.
 */
final class C10dChangeSignal implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(C10dChangeSignal.class.getName());

  /** How many {@code changed/<n>} keys stay before the writer of a newer one deletes them. */
  static final long NOTIFY_WINDOW = 64;

  private final Store store;
  private final String runId;
  private final RendezvousKeys keys;
  private final String epochKey;
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

  /** Counts this node among the signalling ones and, on the 1.13 protocol, watches the epoch. */
  C10dChangeSignal(Store store, RendezvousKeys keys) {
    this.store = store;
    this.runId = keys.runId();
    this.keys = keys;
    // Once the state key plus ".epoch": the state key of the run id "<run_id>.epoch".
    this.epochKey = keys.own(RendezvousKeys.Own.EPOCH);
    // Count this node among those that signal (never decremented: an upper bound).
    try {
      signalling = store.add(keys.own(RendezvousKeys.Own.SIGNALLING), 1);
    } catch (StoreException e) {
      signalling = 0;
    }
    if (store instanceof TcpStore tcp && tcp.protocol() == StoreProtocol.V1_13) {
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

  /** See {@link RendezvousBackend#signallingNodes()}; re-read at most once a second. */
  long signallingNodes() {
    long now = System.nanoTime();
    if (now - signallingReadAt > 1_000_000_000L) {
      signallingReadAt = now;
      try {
        signalling = store.add(keys.own(RendezvousKeys.Own.SIGNALLING), 0);
      } catch (StoreException e) {
        signalling = 0;
      }
    }
    return signalling;
  }

  /** The epoch to pair with a state about to be read: a lower bound of the current one. */
  long knownEpoch() {
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

  /** Signals a significant change; returns the new epoch, or -1 if the store failed. */
  long announce() {
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

  private String changedKey(long n) {
    return keys.own(RendezvousKeys.Own.CHANGED, n);
  }

  /** Blocks until an epoch after {@code epoch} is signalled or {@code timeout} passes. */
  boolean await(long epoch, Duration timeout) throws InterruptedException {
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
    Store waiter = waiter();
    try {
      waiter.await(List.of(changedKey(epoch + 1)), timeout);
      return true;
    } catch (StoreTimeoutException e) {
      return false;
    } catch (StoreException e) {
      if (Thread.currentThread().isInterrupted()) {
        throw new InterruptedException();
      }
      // The wait connection broke: the store may have gone. Report a change, so that the caller
      // reads at once and meets the failure (or the state) now rather than after the wait; the
      // next wait opens a fresh connection.
      LOG.log(Level.DEBUG, "rendezvous ''{0}'': the wait failed: {1}", runId, e.getMessage());
      dropWaiter(waiter);
      return true;
    }
  }

  private void dropWaiter(Store broken) {
    waitLock.lock();
    try {
      if (ownsWaitStore && waitStore == broken) {
        waitStore.close();
        waitStore = null;
        ownsWaitStore = false;
      }
    } finally {
      waitLock.unlock();
    }
  }

  /**
   * A connection of its own for blocking waits (opened on first use), so that they do not hold the
   * shared one; the shared store itself where no second connection can be opened.
   */
  Store waiter() {
    waitLock.lock();
    try {
      if (waitStore == null) {
        if (store instanceof TcpStore tcp) {
          try {
            // The server answered the shared connection already: one that refuses now is gone,
            // which must be reported at once, not retried for the read timeout.
            waitStore =
                TcpStore.connect(
                    tcp.options().toBuilder().protocol(tcp.protocol()).awaitServer(false).build());
            ownsWaitStore = true;
          } catch (StoreException e) {
            waitStore = store;
          }
        } else {
          waitStore = store;
        }
      }
      return waitStore;
    } finally {
      waitLock.unlock();
    }
  }

  /** Stops the watch and closes the wait connection. */
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
