package org.rdzv.dynamic;

import java.time.Duration;
import java.util.Optional;

/**
 * Where the dynamic rendezvous keeps its one shared state value: PyTorch's {@code
 * RendezvousBackend} (c10d store, etcd v2, etcd v3).
 *
 * <p>The state is opaque bytes (a pickled {@code _RendezvousState}); the backend stores it
 * (base64-encoded where PyTorch does) and fences writes with a token it alone understands: the
 * previous base64 value on c10d, the modified index on etcd v2, the mod revision on etcd v3.
 * Methods block on the network for at most the backend's read timeout and report failures as
 * {@link org.rdzv.api.RendezvousConnectionException} (backend unreachable) or {@link
 * org.rdzv.api.RendezvousStateException} (stored value not decodable). Implementations are
 * thread-safe.
 */
public interface RendezvousBackend {

  /** The backend's name, e.g. {@code c10d}, as PyTorch's {@code RendezvousBackend.name}. */
  String name();

  /** Reads the state; empty when none has been written yet. */
  Optional<State> getState();

  /**
   * Writes {@code state} if the stored state still carries {@code token} ({@code null}: only if no
   * state exists yet). Returns what is stored afterwards and whether this call wrote it; empty when
   * there is still no state.
   */
  Optional<SetResult> setState(byte[] state, Object token);

  /**
   * Blocks until the stored state may differ from the one that carried {@code token}, or until
   * {@code timeout} passes; returns {@code true} if a change was signalled. Lets nodes react to
   * each other at once instead of re-reading every second, as PyTorch does. The default signals
   * nothing and simply waits out the timeout, which gives PyTorch's polling.
   */
  default boolean awaitChange(Object token, Duration timeout) throws InterruptedException {
    Thread.sleep(timeout);
    return false;
  }

  /** A stored state and the token that fences the next write. */
  record State(byte[] state, Object token) {}

  /** The outcome of {@link #setState}. */
  record SetResult(byte[] state, Object token, boolean written) {}
}
