package org.rdzv.api;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A view of another store in which every key becomes {@code prefix + "/" + key}, exactly as
 * PyTorch's {@code PrefixStore}. Nested prefix stores concatenate. {@link #numKeys()} counts the
 * whole underlying store, as PyTorch does. {@link #close()} does not close the underlying store,
 * which belongs to whoever created it.
 */
public final class PrefixStore implements Store {
  private final String prefix;
  private final Store store;

  public PrefixStore(String prefix, Store store) {
    this.prefix = Objects.requireNonNull(prefix, "prefix");
    this.store = Objects.requireNonNull(store, "store");
  }

  public String prefix() {
    return prefix;
  }

  /** The store this one prefixes. */
  public Store underlying() {
    return store;
  }

  /** The key as the underlying store sees it. */
  public String joinKey(String key) {
    return prefix + "/" + key;
  }

  private List<String> joinKeys(List<String> keys) {
    List<String> joined = new ArrayList<>(keys.size());
    for (String key : keys) {
      joined.add(joinKey(key));
    }
    return joined;
  }

  @Override
  public void set(String key, byte[] value) {
    store.set(joinKey(key), value);
  }

  @Override
  public byte[] get(String key) {
    return store.get(joinKey(key));
  }

  @Override
  public long add(String key, long delta) {
    return store.add(joinKey(key), delta);
  }

  @Override
  public byte[] compareSet(String key, byte[] expected, byte[] desired) {
    return store.compareSet(joinKey(key), expected, desired);
  }

  @Override
  public boolean check(List<String> keys) {
    return store.check(joinKeys(keys));
  }

  @Override
  public void await(List<String> keys, Duration timeout) {
    store.await(joinKeys(keys), timeout);
  }

  @Override
  public long numKeys() {
    return store.numKeys();
  }

  @Override
  public boolean deleteKey(String key) {
    return store.deleteKey(joinKey(key));
  }

  @Override
  public void append(String key, byte[] value) {
    store.append(joinKey(key), value);
  }

  @Override
  public List<byte[]> multiGet(List<String> keys) {
    return store.multiGet(joinKeys(keys));
  }

  @Override
  public void multiSet(List<String> keys, List<byte[]> values) {
    store.multiSet(joinKeys(keys), values);
  }

  @Override
  public Duration timeout() {
    return store.timeout();
  }

  @Override
  public void setTimeout(Duration timeout) {
    store.setTimeout(timeout);
  }

  @Override
  public void close() {}

  @Override
  public String toString() {
    return "PrefixStore(" + prefix + ", " + store + ")";
  }
}
