package org.rdzv.dynamic;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.function.Consumer;
import org.rdzv.api.Store;
import org.rdzv.dynamic.spi.ScalableStore;

/**
 * A single-threaded {@link ScalableStore} on a {@link FakeClock}, for the scalable protocol's
 * rules: a wait for a missing key first runs {@link #onAwait} (the test plays the other nodes
 * there), and if the key is still missing moves the clock by the whole timeout and returns null.
 */
final class MemoryScalableStore implements ScalableStore {
  final Map<String, byte[]> values = new HashMap<>();
  final Map<String, Long> counters = new HashMap<>();
  final FakeClock clock;
  byte[] compatible;
  Consumer<String> onAwait = key -> {};
  final List<String> awaited = new ArrayList<>();

  MemoryScalableStore(FakeClock clock) {
    this.clock = clock;
  }

  @Override
  public String describe() {
    return "memory";
  }

  @Override
  public synchronized long enter(String key) {
    long v = counters.merge(key, 1L, Long::sum);
    return v < TcpScalableStore.SEALED ? v : -1;
  }

  @Override
  public synchronized long seal(String key) {
    long v = counters.merge(key, TcpScalableStore.SEALED, Long::sum);
    if (v >= 2 * TcpScalableStore.SEALED) {
      return -1;
    }
    values.put(key + "#sealed", Long.toString(v - TcpScalableStore.SEALED).getBytes());
    return v - TcpScalableStore.SEALED;
  }

  @Override
  public synchronized Tally tally(String key) {
    long v = counters.getOrDefault(key, 0L);
    if (v < TcpScalableStore.SEALED) {
      return new Tally(v, false);
    }
    return new Tally(Long.parseLong(new String(values.get(key + "#sealed"))), true);
  }

  @Override
  public synchronized boolean claim(String key) {
    return counters.merge(key, 1L, Long::sum) == 1;
  }

  @Override
  public synchronized boolean claimed(String key) {
    return counters.getOrDefault(key, 0L) >= 1;
  }

  @Override
  public synchronized void set(String key, byte[] value) {
    values.put(key, value);
  }

  String text(String key) {
    byte[] v = get(key);
    return v == null ? null : new String(v);
  }

  @Override
  public synchronized byte[] get(String key) {
    if (counters.containsKey(key)) {
      return Long.toString(counters.get(key)).getBytes();
    }
    return values.get(key);
  }

  @Override
  public synchronized List<byte[]> getAll(List<String> keys) {
    List<byte[]> out = new ArrayList<>();
    keys.forEach(k -> out.add(get(k)));
    return out;
  }

  @Override
  public synchronized void setAll(List<String> keys, List<byte[]> v) {
    for (int i = 0; i < keys.size(); i++) {
      values.put(keys.get(i), v.get(i));
    }
  }

  @Override
  public synchronized long add(String key, long delta) {
    return counters.merge(key, delta, Long::sum);
  }

  @Override
  public byte[] await(String key, Duration timeout) {
    byte[] v = get(key);
    if (v != null) {
      return v;
    }
    awaited.add(key);
    if (key.endsWith("/master")) {
      set(key, "rank0host 29500".getBytes()); // another node is rank 0
    }
    onAwait.accept(key);
    v = get(key);
    if (v == null) {
      clock.advance(timeout);
    }
    return v;
  }

  @Override
  public void beat(String key) {
    add(key, 1);
  }

  @Override
  public long beats(String key) {
    return add(key, 0);
  }

  @Override
  public synchronized Optional<byte[]> compatibleState() {
    return Optional.ofNullable(compatible);
  }

  @Override
  public synchronized boolean fenceCompatible(byte[] closedState) {
    if (compatible != null) {
      return false;
    }
    compatible = closedState;
    return true;
  }

  @Override
  public Store store() {
    return new org.rdzv.api.PrefixStore("", new FileStoreless());
  }

  @Override
  public void close() {}

  /** The workers' store: only MASTER_ADDR/MASTER_PORT are written to it by rank 0. */
  private final class FileStoreless implements Store {
    @Override
    public void set(String key, byte[] value) {
      MemoryScalableStore.this.set("workers/" + key, value);
    }

    @Override
    public byte[] get(String key) {
      return MemoryScalableStore.this.get("workers/" + key);
    }

    @Override
    public long add(String key, long delta) {
      return MemoryScalableStore.this.add("workers/" + key, delta);
    }

    @Override
    public byte[] compareSet(String key, byte[] expected, byte[] desired) {
      throw new UnsupportedOperationException();
    }

    @Override
    public boolean check(List<String> keys) {
      return keys.stream().allMatch(k -> get(k) != null);
    }

    @Override
    public void await(List<String> keys, Duration timeout) {}

    @Override
    public long numKeys() {
      return values.size();
    }

    @Override
    public boolean deleteKey(String key) {
      return values.remove("workers/" + key) != null;
    }

    @Override
    public void append(String key, byte[] value) {
      throw new UnsupportedOperationException();
    }

    @Override
    public List<byte[]> multiGet(List<String> keys) {
      return keys.stream().map(this::get).toList();
    }

    @Override
    public void multiSet(List<String> keys, List<byte[]> v) {
      for (int i = 0; i < keys.size(); i++) {
        set(keys.get(i), v.get(i));
      }
    }

    @Override
    public Duration timeout() {
      return Duration.ofSeconds(1);
    }

    @Override
    public void setTimeout(Duration timeout) {}

    @Override
    public void close() {}
  }
}
