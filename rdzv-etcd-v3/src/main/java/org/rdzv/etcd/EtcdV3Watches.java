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
 * Waits for keys to be put, sharing one etcd watch among the threads of this process that wait for
 * the same key (nine thousand nodes of one JVM waiting for their round's rank 0 hold one watch).
 * Every watch is an HTTP/2 stream of the session's one gRPC channel: jetcd opens a stream per watch
 * and cannot put several watches on one stream.
 *
 * <p>A waiter {@linkplain #join joins} with the revision after the read that found the key missing;
 * it shares a watch only if that watch started no later, so that no put after its read can escape
 * it. Thread-safe.
 */
final class EtcdV3Watches {
  private final Watch watch;
  private final ReentrantLock lock = new ReentrantLock();
  private final Map<ByteSequence, Shared> shared = new HashMap<>(); // guarded by lock

  EtcdV3Watches(Watch watch) {
    this.watch = watch;
  }

  /** One watch of one key and the threads that wait on it. */
  final class Shared {
    private final ByteSequence key;
    private final long fromRevision;
    private final boolean listed;
    private final CompletableFuture<byte[]> value = new CompletableFuture<>();
    private Watch.Watcher watcher; // guarded by lock
    private int users; // guarded by lock

    private Shared(ByteSequence key, long fromRevision, boolean listed) {
      this.key = key;
      this.fromRevision = fromRevision;
      this.listed = listed;
    }

    /** The key's first value put at or after the watch's start; fails if the watch does. */
    CompletableFuture<byte[]> value() {
      return value;
    }

    // jetcd calls these on its threads, onError while holding its own lock: they must not take
    // ours (join holds ours while it asks jetcd for a watch). A done watch is replaced by the next
    // join and dropped by the last leave.
    private void seen(WatchResponse response) {
      for (WatchEvent e : response.getEvents()) {
        if (e.getEventType() == WatchEvent.EventType.PUT) {
          value.complete(e.getKeyValue().getValue().getBytes());
          return;
        }
      }
    }

    private void failed(Throwable error) {
      value.completeExceptionally(error);
    }
  }

  /**
   * A watch of {@code key} that reports every put at or after {@code fromRevision}; {@link #leave}
   * it when done, whatever happened.
   */
  Shared join(ByteSequence key, long fromRevision) {
    lock.lock();
    try {
      Shared s = shared.get(key);
      if (s == null || s.value.isDone() || s.fromRevision > fromRevision) {
        // A watch that started after this waiter's read could miss a put between the two; such a
        // waiter (rare: reads answered out of order) watches alone.
        boolean list = s == null || s.value.isDone();
        s = new Shared(key, fromRevision, list);
        Shared created = s;
        s.watcher =
            watch.watch(
                key,
                WatchOption.builder().withRevision(fromRevision).withNoDelete(true).build(),
                Watch.listener(created::seen, created::failed));
        if (list) {
          shared.put(key, s);
        }
      }
      s.users++;
      return s;
    } finally {
      lock.unlock();
    }
  }

  /** Drops one waiter; the last one closes the watch. */
  void leave(Shared s) {
    Watch.Watcher closing = null;
    lock.lock();
    try {
      if (--s.users == 0) {
        if (s.listed) {
          shared.remove(s.key, s);
        }
        closing = s.watcher;
      }
    } finally {
      lock.unlock();
    }
    if (closing != null) {
      closing.close();
    }
  }
}
