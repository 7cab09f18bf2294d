package org.rdzv.api;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;

/**
 * A key-value store shared by the nodes of a rendezvous: the operations of PyTorch's {@code
 * c10d::Store} (TCPStore, FileStore, PrefixStore, EtcdStore).
 *
 * <p>Keys are strings (sent as UTF-8), values are bytes. Blocking operations ({@link #get}, {@link
 * #await(List)}) wait up to {@link #timeout()} and then throw {@link StoreTimeoutException}; they
 * can be interrupted, which throws {@link StoreException} with the interrupt flag set again. Every
 * other failure is a {@link StoreException}. Implementations are thread-safe.
 */
public interface Store extends AutoCloseable {

  /** Creates or overwrites {@code key}. Wakes every waiter whose keys are now all present. */
  void set(String key, byte[] value);

  /** Waits until {@code key} exists (up to {@link #timeout()}) and returns its value. */
  byte[] get(String key);

  /**
   * Adds {@code delta} to the decimal counter stored under {@code key} (a missing key counts as 0)
   * and returns the new value. {@code add(key, 0)} reads a counter.
   */
  long add(String key, long delta);

  /**
   * Replaces the value of {@code key} with {@code desired} if it currently equals {@code expected};
   * a missing key matches an empty {@code expected}. Returns the value stored afterwards — {@code
   * desired} on success, the current value on a mismatch, and (PyTorch's rule) {@code expected}
   * itself when the key is missing and {@code expected} is not empty.
   */
  byte[] compareSet(String key, byte[] expected, byte[] desired);

  /** Returns whether every key exists, without blocking. */
  boolean check(List<String> keys);

  /** Waits until every key exists, up to {@link #timeout()}. */
  default void await(List<String> keys) {
    await(keys, timeout());
  }

  /** Waits until every key exists, up to {@code timeout}. */
  void await(List<String> keys, Duration timeout);

  /** The number of keys in the whole store (a prefix does not narrow it, as in PyTorch). */
  long numKeys();

  /** Deletes {@code key}; returns whether it existed. */
  boolean deleteKey(String key);

  /** Appends to the value of {@code key}, creating it when missing. */
  void append(String key, byte[] value);

  /** Waits until every key exists and returns their values in order. */
  List<byte[]> multiGet(List<String> keys);

  /** Sets every key to the value at the same position. */
  void multiSet(List<String> keys, List<byte[]> values);

  /** The default deadline of blocking operations. */
  Duration timeout();

  /** Changes the default deadline of blocking operations. */
  void setTimeout(Duration timeout);

  /** Releases connections this object owns. Idempotent. */
  @Override
  void close();

  default void set(String key, String value) {
    set(key, value.getBytes(StandardCharsets.UTF_8));
  }

  default String getString(String key) {
    return new String(get(key), StandardCharsets.UTF_8);
  }
}
