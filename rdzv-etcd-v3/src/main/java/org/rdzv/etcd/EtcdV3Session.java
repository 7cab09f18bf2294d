package org.rdzv.etcd;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.Client;
import io.etcd.jetcd.ClientBuilder;
import io.etcd.jetcd.Watch;
import io.etcd.jetcd.options.WatchOption;
import io.etcd.jetcd.watch.WatchResponse;
import io.netty.handler.ssl.SslContextBuilder;
import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;
import javax.net.ssl.SSLException;

/**
 * A jetcd client shared by every etcd-v3 backend and store of this process that uses the same
 * {@link EtcdConnection} (one gRPC channel for a thousand nodes in one JVM), with the lease that
 * gives the rendezvous state its time to live. Reference-counted: {@link #acquire} and {@link
 * #release}.
 */
final class EtcdV3Session {
  private static final System.Logger LOG = System.getLogger(EtcdV3Session.class.getName());
  private static final ReentrantLock SESSIONS_LOCK = new ReentrantLock();
  private static final Map<EtcdConnection, EtcdV3Session> SESSIONS = new HashMap<>();

  /** Leases live this long, like the etcd-v2 TTL; a new one is granted once one is an hour old. */
  static final long LEASE_TTL_SECONDS = 7200;

  private static final long LEASE_RENEW_NANOS = TimeUnit.HOURS.toNanos(1);

  /** Thrown when etcd cannot be reached or answered with an error. */
  static final class Unavailable extends RuntimeException {
    private static final long serialVersionUID = 1L;

    Unavailable(String message, Throwable cause) {
      super(message, cause);
    }
  }

  private final EtcdConnection connection;
  private final Client client;
  private final ReentrantLock leaseLock = new ReentrantLock();
  private final EtcdV3Batcher batcher;
  private final EtcdV3Watches watches;
  private final java.util.concurrent.ConcurrentHashMap<String, CompletableFuture<Boolean>> fences =
      new java.util.concurrent.ConcurrentHashMap<>();
  private int references;
  private long leaseId;
  private long leaseGrantedNanos;

  private EtcdV3Session(EtcdConnection connection) {
    this.connection = connection;
    ClientBuilder builder =
        Client.builder()
            .endpoints(connection.urls().toArray(String[]::new))
            .connectTimeout(min(connection.readTimeout(), Duration.ofSeconds(5)))
            .keepaliveTime(Duration.ofSeconds(10))
            .keepaliveTimeout(Duration.ofSeconds(5))
            // Fail calls on a channel that cannot connect instead of holding them until the read
            // timeout (60 s by default): jetcd retries them for up to 10 s (a leader election),
            // then the caller gets a connection error naming the endpoints.
            .waitForReady(false)
            .retryMaxDuration(min(connection.readTimeout(), Duration.ofSeconds(10)));
    if (connection.tls()) {
      try {
        builder.sslContext(
            (SslContextBuilder ssl) -> {
              try {
                var keys = Tls.keyManagers(connection);
                var trust = Tls.trustManagers(connection);
                if (keys != null) {
                  ssl.keyManager(keys);
                }
                if (trust != null) {
                  ssl.trustManager(trust);
                }
              } catch (java.security.GeneralSecurityException e) {
                throw new IllegalArgumentException(
                    "Cannot set up TLS for etcd: " + e.getMessage(), e);
              }
            });
      } catch (SSLException e) {
        throw new IllegalArgumentException("Cannot set up TLS for etcd: " + e.getMessage(), e);
      }
    }
    this.client = builder.build();
    this.batcher = new EtcdV3Batcher(client.getKVClient(), BATCHES_IN_FLIGHT);
    this.watches = new EtcdV3Watches(client.getWatchClient());
  }

  /** Transactions of each kind (reads, writes) the batcher has out at once, at most. */
  static final int BATCHES_IN_FLIGHT = 8;

  private static Duration min(Duration a, Duration b) {
    return a.compareTo(b) <= 0 ? a : b;
  }

  static EtcdV3Session acquire(EtcdConnection connection) {
    SESSIONS_LOCK.lock();
    try {
      EtcdV3Session session = SESSIONS.computeIfAbsent(connection, EtcdV3Session::new);
      session.references++;
      return session;
    } finally {
      SESSIONS_LOCK.unlock();
    }
  }

  /** Drops one reference; the last one closes the client. Idempotence is the caller's concern. */
  void release() {
    SESSIONS_LOCK.lock();
    try {
      if (--references > 0) {
        return;
      }
      SESSIONS.remove(connection);
    } finally {
      SESSIONS_LOCK.unlock();
    }
    client.close();
  }

  Client client() {
    return client;
  }

  /**
   * The scalable protocol's fences of PyTorch's state, per run id: written (true) or being written
   * by this session ({@link EtcdV3ScalableStore#fenceCompatible}).
   */
  java.util.concurrent.ConcurrentHashMap<String, CompletableFuture<Boolean>> fences() {
    return fences;
  }

  /** Combines the scalable protocol's small operations of this process's threads. */
  EtcdV3Batcher batcher() {
    return batcher;
  }

  /** Shares watches of one key among this process's waiting threads. */
  EtcdV3Watches watches() {
    return watches;
  }

  EtcdConnection connection() {
    return connection;
  }

  static ByteSequence bytes(String text) {
    return ByteSequence.from(text, java.nio.charset.StandardCharsets.UTF_8);
  }

  /** Waits for {@code future} up to the read timeout; failures become {@link Unavailable}. */
  <T> T await(CompletableFuture<T> future) {
    try {
      return future.get(connection.readTimeout().toNanos(), TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      future.cancel(true);
      Thread.currentThread().interrupt();
      throw new Unavailable(
          "Interrupted while talking to etcd at " + connection.endpointText() + ".", e);
    } catch (TimeoutException e) {
      future.cancel(true);
      throw new Unavailable(
          "The connection to etcd has failed ("
              + connection.endpointText()
              + ": no answer within "
              + connection.readTimeout().toSeconds()
              + " s).",
          e);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause() == null ? e : e.getCause();
      throw new Unavailable(
          "The connection to etcd has failed ("
              + connection.endpointText()
              + ": "
              + cause.getClass().getSimpleName()
              + " "
              + cause.getMessage()
              + ").",
          cause);
    }
  }

  /** The id of a lease with at least an hour left, granting a new one when needed. */
  long lease() {
    leaseLock.lock();
    try {
      if (leaseId == 0 || System.nanoTime() - leaseGrantedNanos > LEASE_RENEW_NANOS) {
        leaseId = await(client.getLeaseClient().grant(LEASE_TTL_SECONDS)).getID();
        leaseGrantedNanos = System.nanoTime();
        LOG.log(
            Level.DEBUG,
            "granted etcd lease {0} for {1} s",
            Long.toHexString(leaseId),
            LEASE_TTL_SECONDS);
      }
      return leaseId;
    } finally {
      leaseLock.unlock();
    }
  }

  /** Forgets the lease (it was revoked or expired), so the next call grants a new one. */
  void resetLease() {
    leaseLock.lock();
    try {
      leaseId = 0;
    } finally {
      leaseLock.unlock();
    }
  }

  /**
   * Waits until {@code key} is deleted at or after {@code fromRevision}, or {@code timeout} passes;
   * returns whether it was deleted (or the history was compacted).
   */
  boolean awaitDeleted(ByteSequence key, long fromRevision, Duration timeout)
      throws InterruptedException {
    CompletableFuture<Boolean> deleted = new CompletableFuture<>();
    Watch.Watcher watcher =
        client
            .getWatchClient()
            .watch(
                key,
                WatchOption.builder().withRevision(fromRevision).withNoPut(true).build(),
                Watch.listener(
                    (WatchResponse response) -> {
                      if (!response.getEvents().isEmpty()) {
                        deleted.complete(true);
                      }
                    },
                    (Throwable error) -> deleted.complete(true)));
    try {
      return deleted.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (TimeoutException e) {
      return false;
    } catch (ExecutionException e) {
      return true;
    } finally {
      watcher.close();
    }
  }

  /**
   * Waits until any of {@code keys} changes at or after {@code fromRevision}, or {@code timeout}
   * passes; returns whether a change (or a compaction of that history) was seen.
   */
  boolean awaitAny(List<ByteSequence> keys, long fromRevision, Duration timeout)
      throws InterruptedException {
    if (timeout.isNegative() || timeout.isZero()) {
      return false;
    }
    CompletableFuture<Boolean> changed = new CompletableFuture<>();
    Watch.Listener listener =
        Watch.listener(
            (WatchResponse response) -> {
              if (!response.getEvents().isEmpty()) {
                changed.complete(true);
              }
            },
            (Throwable error) -> changed.complete(true));
    List<Watch.Watcher> watchers = new java.util.ArrayList<>(keys.size());
    try {
      WatchOption option = WatchOption.builder().withRevision(fromRevision).build();
      for (ByteSequence key : keys) {
        watchers.add(client.getWatchClient().watch(key, option, listener));
      }
      return changed.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (TimeoutException e) {
      return false;
    } catch (ExecutionException e) {
      return true;
    } finally {
      watchers.forEach(Watch.Watcher::close);
    }
  }
}
