package org.rdzv.etcd;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.KV;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.kv.TxnResponse;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.PutOption;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import org.rdzv.api.Store;
import org.rdzv.api.StoreException;
import org.rdzv.api.StoreTimeoutException;

/**
 * A {@link Store} on etcd's v3 API: each key is the v3 key {@code prefix + key} (UTF-8, no encoding
 * needed: v3 keys are bytes), each value the raw bytes, counters decimal text. Atomic operations
 * are transactions on the mod revision; blocking reads wait with v3 watches from the revision of
 * the read, never polling. Keys carry no lease, like PyTorch's EtcdStore keys.
 */
final class EtcdV3Store implements Store {
  private final EtcdV3Session session;
  private final String prefix;
  private final AtomicBoolean closed = new AtomicBoolean();
  private final boolean ownsSession;
  private volatile Duration timeout;

  EtcdV3Store(EtcdV3Session session, String prefix, Duration timeout, boolean ownsSession) {
    this.session = Objects.requireNonNull(session, "session");
    this.prefix = prefix.endsWith("/") ? prefix : prefix + "/";
    this.timeout = timeout == null ? EtcdV2Store.DEFAULT_TIMEOUT : timeout;
    this.ownsSession = ownsSession;
  }

  private ByteSequence key(String key) {
    return EtcdV3Session.bytes(prefix + key);
  }

  private KV kv() {
    return session.client().getKVClient();
  }

  @Override
  public void set(String key, byte[] value) {
    call(() -> session.await(kv().put(key(key), ByteSequence.from(value))));
  }

  @Override
  public byte[] get(String key) {
    Map<String, byte[]> found = waitFor(List.of(key), timeout);
    if (found == null) {
      throw new StoreTimeoutException("Key " + key + " not found in EtcdStore");
    }
    return found.get(key);
  }

  @Override
  public long add(String key, long delta) {
    return call(
        () -> {
          for (int attempt = 0; ; attempt++) {
            KeyValue current = read(key);
            long value;
            try {
              value =
                  current == null
                      ? 0
                      : Long.parseLong(current.getValue().toString(StandardCharsets.UTF_8).strip());
            } catch (NumberFormatException e) {
              throw new StoreException("the value of " + key + " in etcd is not a counter", e);
            }
            long next = value + delta;
            if (swap(key, current, Long.toString(next).getBytes(StandardCharsets.US_ASCII))
                .isSucceeded()) {
              return next;
            }
            EtcdV2Store.backOff(attempt);
          }
        });
  }

  @Override
  public byte[] compareSet(String key, byte[] expected, byte[] desired) {
    return call(
        () -> {
          for (int attempt = 0; ; attempt++) {
            KeyValue current = read(key);
            if (current == null) {
              if (expected.length != 0) {
                return expected;
              }
            } else if (!Arrays.equals(current.getValue().getBytes(), expected)) {
              return current.getValue().getBytes();
            }
            if (swap(key, current, desired).isSucceeded()) {
              return desired;
            }
            EtcdV2Store.backOff(attempt);
          }
        });
  }

  @Override
  public void append(String key, byte[] value) {
    call(
        () -> {
          for (int attempt = 0; ; attempt++) {
            KeyValue current = read(key);
            byte[] old = current == null ? new byte[0] : current.getValue().getBytes();
            byte[] joined = Arrays.copyOf(old, old.length + value.length);
            System.arraycopy(value, 0, joined, old.length, value.length);
            if (swap(key, current, joined).isSucceeded()) {
              return null;
            }
            EtcdV2Store.backOff(attempt);
          }
        });
  }

  /** Writes {@code value} if the key is still as {@code current} (null: still missing). */
  private TxnResponse swap(String key, KeyValue current, byte[] value) {
    ByteSequence k = key(key);
    Cmp fence =
        current == null
            ? new Cmp(k, Cmp.Op.EQUAL, CmpTarget.createRevision(0))
            : new Cmp(k, Cmp.Op.EQUAL, CmpTarget.modRevision(current.getModRevision()));
    return session.await(
        kv().txn().If(fence).Then(Op.put(k, ByteSequence.from(value), PutOption.DEFAULT)).commit());
  }

  private KeyValue read(String key) {
    List<KeyValue> kvs = session.await(kv().get(key(key))).getKvs();
    return kvs.isEmpty() ? null : kvs.get(0);
  }

  @Override
  public boolean check(List<String> keys) {
    return call(() -> readAll(keys, new HashMap<>()) < 0);
  }

  @Override
  public void await(List<String> keys, Duration timeout) {
    if (waitFor(keys, timeout) == null) {
      throw new StoreTimeoutException("Timeout while waiting for keys in EtcdStore");
    }
  }

  @Override
  public long numKeys() {
    return call(
        () ->
            session
                .await(
                    kv().get(
                            EtcdV3Session.bytes(prefix),
                            GetOption.builder().isPrefix(true).withCountOnly(true).build()))
                .getCount());
  }

  @Override
  public boolean deleteKey(String key) {
    return call(() -> session.await(kv().delete(key(key))).getDeleted() > 0);
  }

  @Override
  public List<byte[]> multiGet(List<String> keys) {
    Map<String, byte[]> found = waitFor(keys, timeout);
    if (found == null) {
      throw new StoreTimeoutException("Timeout while waiting for keys in EtcdStore");
    }
    List<byte[]> values = new ArrayList<>(keys.size());
    keys.forEach(k -> values.add(found.get(k)));
    return values;
  }

  @Override
  public void multiSet(List<String> keys, List<byte[]> values) {
    if (keys.size() != values.size()) {
      throw new IllegalArgumentException(
          "multiSet needs as many values (" + values.size() + ") as keys (" + keys.size() + ")");
    }
    List<Op> puts = new ArrayList<>(keys.size());
    for (int i = 0; i < keys.size(); i++) {
      puts.add(Op.put(key(keys.get(i)), ByteSequence.from(values.get(i)), PutOption.DEFAULT));
    }
    call(() -> session.await(kv().txn().Then(puts.toArray(Op[]::new)).commit()));
  }

  @Override
  public Duration timeout() {
    return timeout;
  }

  @Override
  public void setTimeout(Duration timeout) {
    this.timeout = Objects.requireNonNull(timeout, "timeout");
  }

  @Override
  public void close() {
    if (ownsSession && closed.compareAndSet(false, true)) {
      session.release();
    }
  }

  /** Every key's value once all exist, or {@code null} when {@code timeout} passes first. */
  private Map<String, byte[]> waitFor(List<String> keys, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    Map<String, byte[]> found = new HashMap<>();
    return call(
        () -> {
          while (true) {
            long revision = readAll(keys, found);
            if (revision < 0) {
              return found;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
              return null;
            }
            List<ByteSequence> missing = new ArrayList<>();
            for (String key : keys) {
              if (!found.containsKey(key)) {
                missing.add(key(key));
              }
            }
            try {
              session.awaitAny(missing, revision + 1, Duration.ofNanos(left));
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
              throw new StoreException("interrupted while waiting for keys in etcd", e);
            }
          }
        });
  }

  /**
   * Reads the keys not yet in {@code found} in one transaction and adds those that exist; returns
   * -1 when all are there, else the revision of the read.
   */
  private long readAll(List<String> keys, Map<String, byte[]> found) {
    List<String> wanted = new ArrayList<>();
    List<Op> gets = new ArrayList<>();
    for (String key : keys) {
      if (!found.containsKey(key) && !wanted.contains(key)) {
        wanted.add(key);
        gets.add(Op.get(key(key), GetOption.DEFAULT));
      }
    }
    if (wanted.isEmpty()) {
      return -1;
    }
    TxnResponse response = session.await(kv().txn().Then(gets.toArray(Op[]::new)).commit());
    List<GetResponse> results = response.getGetResponses();
    for (int i = 0; i < wanted.size(); i++) {
      List<KeyValue> kvs = results.get(i).getKvs();
      if (!kvs.isEmpty()) {
        found.put(wanted.get(i), kvs.get(0).getValue().getBytes());
      }
    }
    return found.keySet().containsAll(keys) ? -1 : response.getHeader().getRevision();
  }

  private interface Call<T> {
    T run();
  }

  private static <T> T call(Call<T> call) {
    try {
      return call.run();
    } catch (EtcdV3Session.Unavailable e) {
      throw new StoreException(e.getMessage(), e);
    }
  }
}
