package org.rdzv.etcd;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Watch;
import io.etcd.jetcd.options.WatchOption;
import io.etcd.jetcd.watch.WatchEvent;
import io.etcd.jetcd.watch.WatchResponse;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Watches of keys for the threads of this process that wait for them to be put, one watch per key
 * however many threads wait for it (nine thousand nodes of one JVM waiting for their round's rank 0
 * hold one). Every watch is an HTTP/2 stream of the session's one gRPC channel: jetcd opens a
 * stream per watch and cannot put several watches on one stream.
 *
 * <p>A watch starts at etcd's current revision (etcd adds it to its synced watchers at once; a
 * watch from a past revision would wait for etcd's catch-up loop, which serves 512 watchers every
 * 100 ms and rereads the history for them), and a waiter reads the key only once the watch is
 * {@linkplain Shared#created() created}: a put before the creation shows in the read, one after it
 * in the watch. Thread-safe.
 */
final class EtcdV3Watches {
  private final Watch watch;
  private final ReentrantLock lock = new ReentrantLock();
  private final Map<ByteSequence, Shared> shared = new HashMap<>(); // guarded by lock

  EtcdV3Watches(Watch watch) {
    this.watch = watch;
  }

  /** One watch of one key and the threads that wait on it. */
  static final class Shared {
    private final ByteSequence key;
    private final CompletableFuture<Void> created = new CompletableFuture<>();
    private final CompletableFuture<byte[]> value = new CompletableFuture<>();
    private Watch.Watcher watcher; // guarded by lock
    private int users; // guarded by lock
    private long idle; // times the users dropped to 0; guarded by lock

    private Shared(ByteSequence key) {
      this.key = key;
    }

    /** Completes once etcd reports the watch created; fails if the watch does. */
    CompletableFuture<Void> created() {
      return created;
    }

    /** The key's first value put after the watch was created; fails if the watch does. */
    CompletableFuture<byte[]> value() {
      return value;
    }

    // jetcd calls these on its threads, onError while holding its own lock: they must not take
    // ours (join holds ours while it asks jetcd for a watch). A done watch is replaced by the next
    // join and dropped by the last leave.
    private void seen(WatchResponse response) {
      created.complete(null);
      for (WatchEvent e : response.getEvents()) {
        if (e.getEventType() == WatchEvent.EventType.PUT) {
          value.complete(e.getKeyValue().getValue().getBytes());
          return;
        }
      }
    }

    private void failed(Throwable error) {
      created.completeExceptionally(error);
      value.completeExceptionally(error);
    }
  }

  /**
   * How long a watch nobody waits on stays open: a waiter that wakes to look around (every few
   * seconds while its round forms) and comes back finds it still there, instead of costing etcd and
   * the channel a new watch stream each time.
   */
  static final long LINGER_MILLIS = 10_000;

  /** A watch of {@code key}; {@link #leave} it when done, whatever happened. */
  Shared join(ByteSequence key) {
    lock.lock();
    try {
      Shared s = shared.get(key);
      if (s == null || s.value.isDone()) {
        Shared fresh = new Shared(key);
        fresh.watcher =
            watch.watch(
                key,
                WatchOption.builder().withNoDelete(true).withCreateNotify(true).build(),
                Watch.listener(fresh::seen, fresh::failed));
        shared.put(key, fresh);
        s = fresh;
      }
      s.users++;
      return s;
    } finally {
      lock.unlock();
    }
  }

  /**
   * Drops one waiter. The last one closes the watch if it is done, else leaves it open for {@link
   * #LINGER_MILLIS} in case a waiter comes back.
   */
  void leave(Shared s) {
    Watch.Watcher closing = null;
    long epoch = -1;
    lock.lock();
    try {
      if (--s.users == 0) {
        if (s.value.isDone()) {
          shared.remove(s.key, s);
          closing = s.watcher;
        } else {
          epoch = ++s.idle;
        }
      }
    } finally {
      lock.unlock();
    }
    if (closing != null) {
      close(closing);
    } else if (epoch >= 0) {
      long idleEpoch = epoch;
      CompletableFuture.runAsync(
          () -> expire(s, idleEpoch),
          CompletableFuture.delayedExecutor(
              LINGER_MILLIS, java.util.concurrent.TimeUnit.MILLISECONDS));
    }
  }

  /** Closes {@code s} if nobody joined it since it became idle for the {@code epoch}-th time. */
  private void expire(Shared s, long epoch) {
    Watch.Watcher closing = null;
    lock.lock();
    try {
      if (s.users == 0 && s.idle == epoch) {
        shared.remove(s.key, s);
        closing = s.watcher;
      }
    } finally {
      lock.unlock();
    }
    if (closing != null) {
      close(closing);
    }
  }

  private static void close(Watch.Watcher watcher) {
    try {
      watcher.close();
    } catch (RuntimeException e) {
      // the session's client is closed already, and its watches with it
    }
  }
}
