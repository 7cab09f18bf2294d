package org.rdzv.etcd;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.kv.PutResponse;
import io.etcd.jetcd.kv.TxnResponse;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.PutOption;
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
 *   <li>{@link #await} watches {@code K} from etcd's current revision and reads it once the watch
 *       is created, so a write between the two is never missed ({@link EtcdV3Watches}: one watch
 *       per key and process, an HTTP/2 stream of the session's one gRPC channel).
 * </ul>
 *
 * <p>Every operation goes through the session's {@link EtcdV3Batcher}, which puts what the threads
 * of this process ask at the same time into shared transactions of up to 128 operations: with one
 * node per process that is one request per operation, with ten thousand handlers in one JVM about a
 * hundredth of the requests. The cost per node stays O(1) either way; only the sequence's tickets
 * leave one per transaction (etcd counts one version per key and transaction).
 *
 * <p>Handles of one process with the same connection options share one {@link EtcdV3Session}
 * (reference-counted); {@link #close} releases this handle's share. A read-only handle (status
 * tools) refuses every write with {@link IllegalStateException}. etcd failures surface as {@link
 * RendezvousConnectionException} naming the endpoints.
 */
final class EtcdV3ScalableStore implements ScalableStore {
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

  // ---- the batched primitives

  /** Reads {@code gets} in one snapshot, batched with other threads' reads. */
  private List<GetResponse> read(Op... gets) {
    return call(session.batcher().read(List.of(gets), 64 * gets.length));
  }

  private KeyValue readOne(ByteSequence key, GetOption option) {
    List<KeyValue> kvs = read(Op.get(key, option)).get(0).getKvs();
    return kvs.isEmpty() ? null : kvs.get(0);
  }

  /** Applies {@code If(cmp) Then(then) Else(otherwise)}, which writes {@code key} only. */
  private TxnResponse write(ByteSequence key, int bytes, Cmp[] cmp, Op[] then, Op[] otherwise) {
    writable();
    return call(
        session.batcher().write(Op.txn(cmp, then, otherwise), List.of(key), bytes + key.size()));
  }

  private static final Cmp[] ALWAYS = new Cmp[0];
  private static final Op[] NOTHING = new Op[0];

  private static Cmp[] isSealed(ByteSequence k) {
    return new Cmp[] {new Cmp(k, Cmp.Op.EQUAL, CmpTarget.value(SEALED))};
  }

  // ---- sequences

  @Override
  public long enter(String key) {
    ByteSequence k = k(key);
    TxnResponse r =
        write(
            k, 16, isSealed(k), new Op[] {Op.get(k, KEYS_ONLY)}, new Op[] {Op.put(k, OPEN, PREV)});
    if (r.isSucceeded()) {
      return -1;
    }
    return versionBefore(r.getPutResponses().get(0)) + 1;
  }

  @Override
  public long seal(String key) {
    ByteSequence k = k(key);
    TxnResponse r = write(k, 16, isSealed(k), NOTHING, new Op[] {Op.put(k, SEALED, PREV)});
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
    KeyValue kv = readOne(k(key), GetOption.DEFAULT);
    if (kv == null) {
      return new Tally(0, false);
    }
    boolean sealed = kv.getValue().equals(SEALED);
    return new Tally(sealed ? kv.getVersion() - 1 : kv.getVersion(), sealed);
  }

  // ---- claims

  @Override
  public boolean claim(String key) {
    ByteSequence k = k(key);
    return write(
            k,
            8,
            new Cmp[] {new Cmp(k, Cmp.Op.EQUAL, CmpTarget.createRevision(0))},
            new Op[] {Op.put(k, ONE, PutOption.DEFAULT)},
            NOTHING)
        .isSucceeded();
  }

  @Override
  public boolean claimed(String key) {
    return readOne(k(key), KEYS_ONLY) != null;
  }

  // ---- values

  @Override
  public void set(String key, byte[] value) {
    writable();
    call(put(key, value));
  }

  /** An unconditional put of {@code key}, batched; not yet waited for. */
  private CompletableFuture<TxnResponse> put(String key, byte[] value) {
    ByteSequence k = k(key);
    return session
        .batcher()
        .write(
            Op.txn(
                ALWAYS, new Op[] {Op.put(k, ByteSequence.from(value), PutOption.DEFAULT)}, NOTHING),
            List.of(k),
            k.size() + value.length + 16);
  }

  @Override
  public byte[] get(String key) {
    KeyValue kv = readOne(k(key), GetOption.DEFAULT);
    return kv == null ? null : kv.getValue().getBytes();
  }

  /** Each key is a get of its own, batched with everyone's: 128 to a transaction. */
  @Override
  public List<byte[]> getAll(List<String> keys) {
    List<CompletableFuture<List<GetResponse>>> gets = new ArrayList<>(keys.size());
    for (String key : keys) {
      ByteSequence k = k(key);
      gets.add(session.batcher().read(List.of(Op.get(k, GetOption.DEFAULT)), 64 + k.size()));
    }
    List<byte[]> values = new ArrayList<>(keys.size());
    for (CompletableFuture<List<GetResponse>> get : gets) {
      List<KeyValue> kvs = call(get).get(0).getKvs();
      values.add(kvs.isEmpty() ? null : kvs.get(0).getValue().getBytes());
    }
    return values;
  }

  /** Each key is a put of its own, batched and in flight together; a repeated key's last wins. */
  @Override
  public void setAll(List<String> keys, List<byte[]> values) {
    writable();
    if (keys.size() != values.size()) {
      throw new IllegalArgumentException(
          "setAll needs as many values (" + values.size() + ") as keys (" + keys.size() + ")");
    }
    // The puts are in flight together, and two transactions in flight may be applied in either
    // order: of a key named twice, only the last value is put.
    Map<String, byte[]> last = new LinkedHashMap<>();
    for (int i = 0; i < keys.size(); i++) {
      last.put(keys.get(i), values.get(i));
    }
    List<CompletableFuture<TxnResponse>> puts = new ArrayList<>(last.size());
    last.forEach((key, value) -> puts.add(put(key, value)));
    puts.forEach(this::call);
  }

  // ---- counters

  @Override
  public long add(String key, long delta) {
    ByteSequence up = k(key + "#+");
    ByteSequence down = k(key + "#-");
    ByteSequence base = k(key + "#=");
    if (delta == 0) {
      List<GetResponse> g =
          read(Op.get(up, KEYS_ONLY), Op.get(down, KEYS_ONLY), Op.get(base, GetOption.DEFAULT));
      return version(g.get(0)) - version(g.get(1)) + counter(key, g.get(2));
    }
    writable();
    if (delta == 1 || delta == -1) {
      // One put whose version is the count of such adds: no compare, so no retry under contention.
      ByteSequence mine = delta == 1 ? up : down;
      ByteSequence other = delta == 1 ? down : up;
      TxnResponse r =
          write(
              mine,
              16,
              ALWAYS,
              new Op[] {
                Op.put(mine, ByteSequence.EMPTY, PREV),
                Op.get(other, KEYS_ONLY),
                Op.get(base, GetOption.DEFAULT)
              },
              NOTHING);
      long mineAfter = versionBefore(r.getPutResponses().get(0)) + 1;
      long otherNow = version(r.getGetResponses().get(0));
      long b = counter(key, r.getGetResponses().get(1));
      return delta * (mineAfter - otherNow) + b;
    }
    for (int attempt = 0; ; attempt++) {
      KeyValue current = readOne(base, GetOption.DEFAULT);
      long value = current == null ? 0 : parseCounter(key, current);
      Cmp fence =
          current == null
              ? new Cmp(base, Cmp.Op.EQUAL, CmpTarget.createRevision(0))
              : new Cmp(base, Cmp.Op.EQUAL, CmpTarget.modRevision(current.getModRevision()));
      long next = value + delta;
      TxnResponse r =
          write(
              base,
              32,
              new Cmp[] {fence},
              new Op[] {
                Op.put(base, EtcdV3Session.bytes(Long.toString(next)), PutOption.DEFAULT),
                Op.get(up, KEYS_ONLY),
                Op.get(down, KEYS_ONLY)
              },
              NOTHING);
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
    if (timeout.isNegative() || timeout.isZero()) {
      return get(key);
    }
    for (int attempt = 0; ; attempt++) {
      // The watch first, then the read: a put before the watch's creation shows in the read, one
      // after it in the watch, so the wait cannot miss it.
      EtcdV3Watches.Shared watch = session.watches().join(k);
      try {
        try {
          watch.created().get(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
          return get(key); // etcd did not create the watch in time: what is there now
        }
        byte[] now = get(key);
        if (now != null) {
          return now;
        }
        return watch.value().get(deadline - System.nanoTime(), TimeUnit.NANOSECONDS);
      } catch (TimeoutException e) {
        return null;
      } catch (ExecutionException e) {
        // The watch failed (a member lost, the stream reset): read again and watch anew; a
        // connection that is really gone fails the read.
        byte[] now = get(key);
        if (now != null || System.nanoTime() - deadline >= 0) {
          return now;
        }
        java.util.concurrent.locks.LockSupport.parkNanos(
            Math.min(deadline - System.nanoTime(), (1L << Math.min(attempt, 7)) * 1_000_000L));
        if (Thread.interrupted()) {
          throw new InterruptedException("interrupted while waiting for " + etcdKey(key));
        }
      } finally {
        session.watches().leave(watch);
      }
    }
  }

  // ---- heartbeats

  @Override
  public void beat(String key) {
    ByteSequence k = k(key);
    write(k, 0, ALWAYS, new Op[] {Op.put(k, ByteSequence.EMPTY, PutOption.DEFAULT)}, NOTHING);
  }

  @Override
  public long beats(String key) {
    KeyValue kv = readOne(k(key), KEYS_ONLY);
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
    ByteSequence value = ByteSequence.from(Base64.getEncoder().encode(closedState));
    Op.TxnOp fence =
        Op.txn(
            new Cmp[] {new Cmp(state, Cmp.Op.EQUAL, CmpTarget.createRevision(0))},
            new Op[] {
              Op.put(state, value, PutOption.DEFAULT),
              Op.put(signal, ByteSequence.EMPTY, PutOption.DEFAULT)
            },
            NOTHING);
    return call(session.batcher().write(fence, List.of(state, signal), value.size() + 128))
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
