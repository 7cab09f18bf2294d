package org.rdzv.dynamic.spi;

import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.rdzv.api.Store;

/**
 * What the scalable protocol ({@code --rdzv-conf protocol=scalable}) needs from a backend, for one
 * run id: a handful of operations that each cost O(1) store work, so that joining, heartbeating and
 * learning a rank cost every node O(1) and a round O(N). A backend offers it through {@link
 * RendezvousBackendProvider#createScalableStore}.
 *
 * <p>Keys are relative to the run ({@code r3/n/17}); the implementation places them in its own
 * namespace, apart from PyTorch's keys and from other runs' (the c10d store puts them under {@code
 * rdzv/v1/<run>/scalable/}). Values are bytes. Implementations are thread-safe, and many handlers
 * of one process may share one implementation's connections.
 */
public interface ScalableStore extends AutoCloseable {

  /** Where the keys live, for messages: {@code the TCP store at 127.0.0.1:29400}. */
  String describe();

  /**
   * Takes the next ticket of the sequence {@code key}: 1 for the first caller, 2 for the next, and
   * so on, without gaps; or {@code -1} once the sequence is {@linkplain #seal sealed}. Atomic: no
   * two callers get the same ticket, and a caller that gets a ticket entered before the seal.
   */
  long enter(String key);

  /**
   * Seals the sequence {@code key}: later {@link #enter} calls get {@code -1}. Returns how many
   * tickets were taken before the seal when this call sealed it, or {@code -1} when it was already
   * sealed (by another caller).
   */
  long seal(String key);

  /** Tickets taken from the sequence {@code key} so far (0 when none), and whether it is sealed. */
  Tally tally(String key);

  /** How many tickets a sequence has given out, and whether it is sealed. */
  record Tally(long entries, boolean sealed) {}

  /**
   * Claims {@code key}: {@code true} for exactly one caller ever (the first), {@code false} for the
   * others. Marks that must be acted on once (a node declared dead) use it.
   */
  boolean claim(String key);

  /** Whether {@code key} was {@linkplain #claim claimed}. */
  boolean claimed(String key);

  /** Creates or overwrites {@code key}. */
  void set(String key, byte[] value);

  /** The value of {@code key}, or {@code null} when it does not exist. Does not wait. */
  byte[] get(String key);

  /**
   * The values of {@code keys}, {@code null} where a key does not exist, in one batched exchange
   * (or a few) rather than one per key. Does not wait.
   */
  List<byte[]> getAll(List<String> keys);

  /** Sets each key to the value at the same position, batched as {@link #getAll}. */
  void setAll(List<String> keys, List<byte[]> values);

  /**
   * Adds {@code delta} to the counter {@code key} (missing counts as 0) and returns the new value;
   * {@code add(key, 0)} reads it.
   */
  long add(String key, long delta);

  /**
   * Waits until {@code key} exists and returns its value, or {@code null} after {@code timeout}.
   * Many threads may wait at once without holding a connection each.
   *
   * @throws InterruptedException if the waiting thread is interrupted
   */
  byte[] await(String key, Duration timeout) throws InterruptedException;

  /**
   * Records a heartbeat of {@code key} (a node's), so that {@link #beats} changes. O(1), touches
   * only this key.
   */
  void beat(String key);

  /**
   * A value that changes with every {@link #beat} of {@code key} (0 before the first): a node's
   * monitor compares two readings, so clocks of different hosts never meet.
   */
  long beats(String key);

  /**
   * The run's state under PyTorch's protocol (the backend's state value, as {@link
   * org.rdzv.dynamic.RendezvousBackend#getState()} returns it), if nodes of that protocol wrote
   * one.
   */
  Optional<byte[]> compatibleState();

  /**
   * Writes {@code closedState} (a pickled state with {@code closed=True}) as the run's PyTorch
   * state if there is none, so that nodes of PyTorch's protocol that come later stop at once
   * instead of waiting for a round that never forms. Returns {@code false} when a state of
   * PyTorch's protocol already exists (and leaves it).
   */
  boolean fenceCompatible(byte[] closedState);

  /**
   * The store the round's workers share ({@link org.rdzv.api.RendezvousInfo#store()}), before the
   * handler adds the round's prefix.
   */
  Store store();

  /** Releases this handle's share of the connections. Idempotent; never throws. */
  @Override
  void close();
}
