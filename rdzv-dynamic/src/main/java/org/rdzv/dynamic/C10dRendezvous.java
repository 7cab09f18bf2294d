package org.rdzv.dynamic;

import java.util.Optional;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.Store;

/**
 * Entry points of the {@code c10d} rendezvous for programs that want it without the registry:
 * PyTorch's {@code create_backend} plus {@code create_handler} ({@link #handler}), a backend over a
 * store of their own ({@link #backend}), and read-only access to a c10d rendezvous state. Each is a
 * thin front of {@link C10dRendezvousProvider}, the one implementation.
 */
public final class C10dRendezvous {
  private static final C10dRendezvousProvider PROVIDER = new C10dRendezvousProvider();

  private C10dRendezvous() {}

  /** The store key of a run's state: {@code torch.rendezvous.<run_id>}. */
  public static String stateKey(String runId) {
    return RendezvousKeys.of(runId).state();
  }

  /**
   * A backend over {@code store}, as PyTorch's {@code C10dRendezvousBackend(store, run_id)}: writes
   * the "no state" sentinel if the key is missing. Java writers also signal changes to other Java
   * nodes (see the class comment of the implementation); PyTorch ignores the signals.
   *
   * @throws IllegalArgumentException if {@code runId} is empty
   * @throws RendezvousConnectionException if the store fails
   */
  public static RendezvousBackend backend(Store store, String runId) {
    return new C10dBackend(store, runId, true);
  }

  /**
   * Creates a {@code c10d} handler, as {@code RendezvousRegistry.handler(params)} does for backend
   * {@code c10d} (see {@link C10dRendezvousProvider} for the options). The handler owns the store
   * and a server it hosts: {@link DynamicRendezvousHandler#close()} releases them.
   *
   * <p>The state dialect, when the store holds no state yet and configuration names none ({@code
   * state_dialect}, {@code store_protocol}): 1.13 when the store server speaks only PyTorch 1.13's
   * protocol, else 2.6+.
   *
   * @throws IllegalArgumentException for invalid parameters, with PyTorch's messages
   * @throws RendezvousConnectionException if the store cannot be reached or hosted
   */
  public static DynamicRendezvousHandler handler(RendezvousParameters params) {
    return PROVIDER.create(params);
  }

  /**
   * Reads the state of {@code runId} without writing anything (not even the sentinel PyTorch's
   * constructor writes): empty when the key is missing or holds the sentinel.
   *
   * @throws RendezvousStateException if the stored value cannot be decoded
   * @throws RendezvousConnectionException if the store fails
   */
  public static Optional<StateSnapshot> readState(Store store, String runId) {
    return C10dBackend.peek(store, runId).map(StateSnapshot::decode);
  }

  /**
   * Reads the state of the rendezvous {@code params} names without joining, hosting or writing:
   * {@link C10dRendezvousProvider#readState}, decoded. Empty when there is no state.
   *
   * @throws RendezvousConnectionException if the store cannot be reached
   * @throws RendezvousStateException if the stored value cannot be decoded
   */
  public static Optional<StateSnapshot> readState(RendezvousParameters params) {
    return PROVIDER.readState(params).map(StateSnapshot::decode);
  }
}
