package org.rdzv.etcd;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.KV;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.Watch;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.kv.PutResponse;
import io.etcd.jetcd.kv.TxnResponse;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.PutOption;
import io.etcd.jetcd.options.WatchOption;
import io.etcd.jetcd.watch.WatchEvent;
import io.etcd.jetcd.watch.WatchResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.Store;
import org.rdzv.dynamic.RendezvousKeys;
import org.rdzv.dynamic.ScalableStatus;
import org.rdzv.dynamic.spi.ScalableStore;

/**
 * The scalable protocol's operations on etcd's v3 API (the {@code etcd-v3} backend), each one
 * transaction (or one read) that never retries under contention, so that ten thousand nodes taking
 * tickets at once cost ten thousand writes, not a compare-and-set storm. Keys live under {@code
 * /rdzv/v1/<E(run_id)>/scalable/} ({@link RendezvousKeys.Own#SCALABLE}), without a lease: a round's
 * keys are written once and must outlive any one node (compact etcd's history for long jobs, see
 * docs/scaling.md).
 *
 * <p>How each operation maps onto etcd, where {@code K} is the key under the prefix:
 *
 * <ul>
 *   <li>a sequence is {@code K}, whose <em>version</em> (puts since creation) counts the tickets:
 *       {@link #enter} is {@code If(value(K) == "sealed") Then get(K) Else put(K, "open",
 *       prev_kv)}, so the ticket is the previous version plus one (1 for a missing key, whose value
 *       comparison fails in etcd and so takes the put); {@link #seal} is the same transaction with
 *       {@code "sealed"}, and its own put is the one version {@link #tally} subtracts;
 *   <li>a claim is a create-if-absent transaction on {@code K};
 *   <li>a counter is three keys, {@code K#+}, {@code K#-} and {@code K#=}, worth {@code
 *       version(K#+) - version(K#-) + value(K#=)}: adding 1 or -1 is one put of {@code K#+} or
 *       {@code K#-} that reads the other two in the same transaction (no retry, whatever the
 *       contention: every node of a round may count itself waiting at once); any other delta is a
 *       compare-and-set loop on {@code K#=}, contended only by such deltas;
 *   <li>a heartbeat is a put of {@code K}, and {@link #beats} its version (no clock involved);
 *   <li>{@link #await} reads {@code K} and, when it is missing, watches it from the revision after
 *       the read, so a write between the two is never missed; watches share the session's one gRPC
 *       channel (each an HTTP/2 stream of it);
 *   <li>batches are transactions of at most {@value #MAX_TXN_OPS} operations (etcd's default {@code
 *       --max-txn-ops}) and about {@value #MAX_TXN_BYTES} bytes (below its 1.5 MiB request limit),
 *       sent at once.
 * </ul>
 *
 * <p>Handles of one process with the same connection options share one {@link EtcdV3Session}
 * (reference-counted); {@link #close} releases this handle's share. A read-only handle (status
 * tools) refuses every write with {@link IllegalStateException}. etcd failures surface as {@link
 * RendezvousConnectionException} naming the endpoints.
 */
final class EtcdV3ScalableStore implements ScalableStore {
  /** etcd's default {@code --max-txn-ops}. */
  static final int MAX_TXN_OPS = 128;

  /** A transaction's payload at most (etcd refuses requests above 1.5 MiB by default). */
  static final int MAX_TXN_BYTES = 1 << 20;

  static final ByteSequence SEALED = EtcdV3Session.bytes("sealed");
  private static final ByteSequence OPEN = EtcdV3Session.bytes("open");
  private static final ByteSequence ONE = EtcdV3Session.bytes("1");
  private static final PutOption PREV = PutOption.builder().withPrevKV().build();
  private static final GetOption KEYS_ONLY = GetOption.builder().withKeysOnly(true).build();

  private final EtcdV3Session session;
  private final String runId;
  private final String prefix;
  private final boolean readOnly;
  private final EtcdV3Backend compatible;
  private final EtcdV3Store workers;
  private final AtomicBoolean closed = new AtomicBoolean();

  /**
   * A handle on {@code session} (whose reference it takes over: {@link #close} releases it) for
   * {@code runId}; the workers' store is the etcd-v3 backend's, {@code /torch/elastic/store/}.
   */
  EtcdV3ScalableStore(EtcdV3Session session, String runId, boolean readOnly) {
    this.session = session;
    this.runId = runId;
    this.prefix = RendezvousKeys.of(runId).etcdOwnDirectory(RendezvousKeys.Own.SCALABLE) + "/";
    this.readOnly = readOnly;
    this.compatible = new EtcdV3Backend(session, runId, EtcdRendezvous.V3_STATE_PREFIX);
    this.workers = new EtcdV3Store(session, EtcdRendezvous.V3_STORE_PREFIX, null, false);
  }

  EtcdV3Session session() {
    return session;
  }

  /** The etcd key of {@code key}. */
  String etcdKey(String key) {
    return prefix + key;
  }

  private ByteSequence k(String key) {
    return EtcdV3Session.bytes(prefix + key);
  }

  private KV kv() {
    return session.client().getKVClient();
  }

  private void writable() {
    if (readOnly) {
      throw new IllegalStateException(
          "this scalable store of the rendezvous '" + runId + "' is read-only");
    }
  }

  @Override
  public String describe() {
    return "etcd at " + session.connection().endpointText() + " (keys " + prefix + ")";
  }

  // ---- sequences

  @Override
  public long enter(String key) {
    writable();
    ByteSequence k = k(key);
    TxnResponse r =
        call(
            kv().txn()
                .If(new Cmp(k, Cmp.Op.EQUAL, CmpTarget.value(SEALED)))
                .Then(Op.get(k, KEYS_ONLY))
                .Else(Op.put(k, OPEN, PREV))
                .commit());
    if (r.isSucceeded()) {
      return -1;
    }
    return versionBefore(r.getPutResponses().get(0)) + 1;
  }

  @Override
  public long seal(String key) {
    writable();
    ByteSequence k = k(key);
    TxnResponse r =
        call(
            kv().txn()
                .If(new Cmp(k, Cmp.Op.EQUAL, CmpTarget.value(SEALED)))
                .Else(Op.put(k, SEALED, PREV))
                .commit());
    if (r.isSucceeded()) {
      return -1;
    }
    return versionBefore(r.getPutResponses().get(0));
  }

  private static long versionBefore(PutResponse put) {
    return put.hasPrevKv() ? put.getPrevKv().getVersion() : 0;
  }

  @Override
  public Tally tally(String key) {
    KeyValue kv = read(k(key), GetOption.DEFAULT);
    if (kv == null) {
      return new Tally(0, false);
    }
    boolean sealed = kv.getValue().equals(SEALED);
    return new Tally(sealed ? kv.getVersion() - 1 : kv.getVersion(), sealed);
  }

  // ---- claims

  @Override
  public boolean claim(String key) {
    writable();
    ByteSequence k = k(key);
    return call(kv().txn()
            .If(new Cmp(k, Cmp.Op.EQUAL, CmpTarget.createRevision(0)))
            .Then(Op.put(k, ONE, PutOption.DEFAULT))
            .commit())
        .isSucceeded();
  }

  @Override
  public boolean claimed(String key) {
    return read(k(key), KEYS_ONLY) != null;
  }

  // ---- values

  @Override
  public void set(String key, byte[] value) {
    writable();
    call(kv().put(k(key), ByteSequence.from(value)));
  }

  @Override
  public byte[] get(String key) {
    KeyValue kv = read(k(key), GetOption.DEFAULT);
    return kv == null ? null : kv.getValue().getBytes();
  }

  private KeyValue read(ByteSequence key, GetOption option) {
    List<KeyValue> kvs = call(kv().get(key, option)).getKvs();
    return kvs.isEmpty() ? null : kvs.get(0);
  }

  @Override
  public List<byte[]> getAll(List<String> keys) {
    List<CompletableFuture<TxnResponse>> batches = new ArrayList<>();
    for (int from = 0; from < keys.size(); from += MAX_TXN_OPS) {
      List<String> batch = keys.subList(from, Math.min(keys.size(), from + MAX_TXN_OPS));
      Op[] gets = new Op[batch.size()];
      for (int i = 0; i < gets.length; i++) {
        gets[i] = Op.get(k(batch.get(i)), GetOption.DEFAULT);
      }
      batches.add(kv().txn().Then(gets).commit());
    }
    List<byte[]> values = new ArrayList<>(keys.size());
    for (CompletableFuture<TxnResponse> batch : batches) {
      for (GetResponse get : call(batch).getGetResponses()) {
        values.add(get.getKvs().isEmpty() ? null : get.getKvs().get(0).getValue().getBytes());
      }
    }
    return values;
  }

  @Override
  public void setAll(List<String> keys, List<byte[]> values) {
    writable();
    if (keys.size() != values.size()) {
      throw new IllegalArgumentException(
          "setAll needs as many values (" + values.size() + ") as keys (" + keys.size() + ")");
    }
    // etcd refuses a transaction that puts one key twice; the last value wins, as in a loop.
    Map<String, byte[]> last = new LinkedHashMap<>();
    for (int i = 0; i < keys.size(); i++) {
      last.put(keys.get(i), values.get(i));
    }
    List<CompletableFuture<TxnResponse>> batches = new ArrayList<>();
    List<Op> puts = new ArrayList<>();
    long bytes = 0;
    for (Map.Entry<String, byte[]> e : last.entrySet()) {
      ByteSequence key = k(e.getKey());
      long size = key.size() + e.getValue().length + 16L;
      if (!puts.isEmpty() && (puts.size() == MAX_TXN_OPS || bytes + size > MAX_TXN_BYTES)) {
        batches.add(kv().txn().Then(puts.toArray(Op[]::new)).commit());
        puts.clear();
        bytes = 0;
      }
      puts.add(Op.put(key, ByteSequence.from(e.getValue()), PutOption.DEFAULT));
      bytes += size;
    }
    if (!puts.isEmpty()) {
      batches.add(kv().txn().Then(puts.toArray(Op[]::new)).commit());
    }
    batches.forEach(EtcdV3ScalableStore.this::call);
  }

  // ---- counters

  @Override
  public long add(String key, long delta) {
    ByteSequence up = k(key + "#+");
    ByteSequence down = k(key + "#-");
    ByteSequence base = k(key + "#=");
    if (delta == 0) {
      TxnResponse r =
          call(
              kv().txn()
                  .Then(
                      Op.get(up, KEYS_ONLY),
                      Op.get(down, KEYS_ONLY),
                      Op.get(base, GetOption.DEFAULT))
                  .commit());
      List<GetResponse> g = r.getGetResponses();
      return version(g.get(0)) - version(g.get(1)) + counter(key, g.get(2));
    }
    writable();
    if (delta == 1 || delta == -1) {
      // One put whose version is the count of such adds: no compare, so no retry under contention.
      ByteSequence mine = delta == 1 ? up : down;
      ByteSequence other = delta == 1 ? down : up;
      TxnResponse r =
          call(
              kv().txn()
                  .Then(
                      Op.put(mine, ByteSequence.EMPTY, PREV),
                      Op.get(other, KEYS_ONLY),
                      Op.get(base, GetOption.DEFAULT))
                  .commit());
      long mineAfter = versionBefore(r.getPutResponses().get(0)) + 1;
      long otherNow = version(r.getGetResponses().get(0));
      long b = counter(key, r.getGetResponses().get(1));
      return delta * (mineAfter - otherNow) + b;
    }
    for (int attempt = 0; ; attempt++) {
      KeyValue current = read(base, GetOption.DEFAULT);
      long value = current == null ? 0 : parseCounter(key, current);
      Cmp fence =
          current == null
              ? new Cmp(base, Cmp.Op.EQUAL, CmpTarget.createRevision(0))
              : new Cmp(base, Cmp.Op.EQUAL, CmpTarget.modRevision(current.getModRevision()));
      long next = value + delta;
      TxnResponse r =
          call(
              kv().txn()
                  .If(fence)
                  .Then(
                      Op.put(base, EtcdV3Session.bytes(Long.toString(next)), PutOption.DEFAULT),
                      Op.get(up, KEYS_ONLY),
                      Op.get(down, KEYS_ONLY))
                  .commit());
      if (r.isSucceeded()) {
        List<GetResponse> g = r.getGetResponses();
        return version(g.get(0)) - version(g.get(1)) + next;
      }
      EtcdV2Store.backOff(attempt);
    }
  }

  private static long version(GetResponse get) {
    return get.getKvs().isEmpty() ? 0 : get.getKvs().get(0).getVersion();
  }

  private long counter(String key, GetResponse get) {
    return get.getKvs().isEmpty() ? 0 : parseCounter(key, get.getKvs().get(0));
  }

  private long parseCounter(String key, KeyValue kv) {
    try {
      return Long.parseLong(kv.getValue().toString(StandardCharsets.UTF_8).strip());
    } catch (NumberFormatException e) {
      throw new RendezvousStateException(
          "The counter " + etcdKey(key) + "#= in etcd is not a number.", e);
    }
  }

  // ---- waiting

  @Override
  public byte[] await(String key, Duration timeout) throws InterruptedException {
    ByteSequence k = k(key);
    long deadline = System.nanoTime() + Math.max(0, timeout.toNanos());
    for (int attempt = 0; ; attempt++) {
      GetResponse now = call(kv().get(k));
      if (!now.getKvs().isEmpty()) {
        return now.getKvs().get(0).getValue().getBytes();
      }
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        return null;
      }
      CompletableFuture<byte[]> put = new CompletableFuture<>();
      // From the revision after the read: a put between the read and the watch's creation is
      // replayed, so the wait cannot miss it.
      Watch.Watcher watcher =
          session
              .client()
              .getWatchClient()
              .watch(
                  k,
                  WatchOption.builder()
                      .withRevision(now.getHeader().getRevision() + 1)
                      .withNoDelete(true)
                      .build(),
                  Watch.listener(
                      (WatchResponse response) -> {
                        for (WatchEvent e : response.getEvents()) {
                          if (e.getEventType() == WatchEvent.EventType.PUT) {
                            put.complete(e.getKeyValue().getValue().getBytes());
                            return;
                          }
                        }
                      },
                      put::completeExceptionally));
      try {
        return put.get(left, TimeUnit.NANOSECONDS);
      } catch (TimeoutException e) {
        return null;
      } catch (ExecutionException e) {
        // The watch failed (history compacted, a member lost): read again and watch anew; a
        // connection that is really gone fails the read.
        if (System.nanoTime() - deadline >= 0) {
          return null;
        }
        java.util.concurrent.locks.LockSupport.parkNanos(
            Math.min(deadline - System.nanoTime(), (1L << Math.min(attempt, 7)) * 1_000_000L));
        if (Thread.interrupted()) {
          throw new InterruptedException("interrupted while waiting for " + etcdKey(key));
        }
      } finally {
        watcher.close();
      }
    }
  }

  // ---- heartbeats

  @Override
  public void beat(String key) {
    writable();
    call(kv().put(k(key), ByteSequence.EMPTY));
  }

  @Override
  public long beats(String key) {
    KeyValue kv = read(k(key), KEYS_ONLY);
    return kv == null ? 0 : kv.getVersion();
  }

  // ---- PyTorch's protocol

  @Override
  public Optional<byte[]> compatibleState() {
    return compatible.getState().map(s -> s.state());
  }

  /**
   * A create-if-absent transaction of the run's state key ({@code
   * /torch/elastic/rendezvous/<run_id>}, base64 as {@link EtcdV3Backend} writes it) that also
   * touches the backend's signal key, so that nodes of PyTorch's protocol waiting for a first state
   * wake and find it closed. Without a lease, unlike the backend's states: the fence must last as
   * long as the scalable keys it guards. Done once per run id and session; concurrent callers share
   * the one transaction. As for the c10d store, a fence another node wrote counts as written
   * (true): false means a state of PyTorch's protocol itself.
   */
  @Override
  public boolean fenceCompatible(byte[] closedState) {
    writable();
    while (true) {
      CompletableFuture<Boolean> mine = new CompletableFuture<>();
      CompletableFuture<Boolean> shared = session.fences().putIfAbsent(runId, mine);
      if (shared == null) {
        try {
          boolean written =
              writeFence(closedState)
                  || compatibleState().map(ScalableStatus::isFence).orElse(false);
          mine.complete(written);
          if (!written) {
            session.fences().remove(runId, mine); // a state of PyTorch's protocol: ask again
          }
          return written;
        } catch (RuntimeException e) {
          session.fences().remove(runId, mine);
          mine.completeExceptionally(e);
          throw e;
        }
      }
      try {
        return shared.join();
      } catch (java.util.concurrent.CompletionException e) {
        // The writer failed; try ourselves (and fail with our own error if etcd is gone).
      }
    }
  }

  private boolean writeFence(byte[] closedState) {
    ByteSequence state = EtcdV3Session.bytes(compatible.key());
    ByteSequence signal =
        EtcdV3Session.bytes(RendezvousKeys.of(runId).etcdOwn(RendezvousKeys.Own.SIGNAL));
    return call(kv().txn()
            .If(new Cmp(state, Cmp.Op.EQUAL, CmpTarget.createRevision(0)))
            .Then(
                Op.put(
                    state,
                    ByteSequence.from(Base64.getEncoder().encode(closedState)),
                    PutOption.DEFAULT),
                Op.put(signal, ByteSequence.EMPTY, PutOption.DEFAULT))
            .commit())
        .isSucceeded();
  }

  @Override
  public Store store() {
    return workers;
  }

  @Override
  public void close() {
    if (closed.compareAndSet(false, true)) {
      session.release();
    }
  }

  private <T> T call(CompletableFuture<T> future) {
    try {
      return session.await(future);
    } catch (EtcdV3Session.Unavailable e) {
      throw new RendezvousConnectionException(e.getMessage(), e);
    }
  }
}
