package org.rdzv.api.spi;

import java.util.Optional;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousStatus;

/**
 * A rendezvous backend found through {@link java.util.ServiceLoader}: the Java counterpart of
 * PyTorch 2.x's {@code torchrun.handlers} entry points.
 *
 * <p>A jar that ships a backend lists its provider class in {@code
 * META-INF/services/org.rdzv.api.spi.RendezvousHandlerProvider}. The default registry registers
 * every provider under {@link #name()} when it is first used; a provider whose name is taken by a
 * different creator is logged and skipped. Providers are instantiated once, with their public
 * no-argument constructor, and must be thread-safe.
 *
 * <p>A backend of PyTorch's dynamic rendezvous implements {@code
 * org.rdzv.dynamic.spi.RendezvousBackendProvider} (module rdzv-dynamic) instead, which provides
 * both methods from PyTorch's {@code create_backend}.
 */
public interface RendezvousHandlerProvider {

  /** The backend name users select, e.g. {@code c10d}; case-sensitive. */
  String name();

  /**
   * Creates a handler. Called once per {@code RendezvousRegistry.create} call; may block while it
   * connects to its backend, and reports bad parameters as {@link IllegalArgumentException}. The
   * caller owns the handler and closes it.
   */
  RendezvousHandler create(RendezvousParameters parameters);

  /**
   * Reads the rendezvous {@code parameters} name without joining, hosting or writing anything, for
   * status tools; empty when the rendezvous has no state yet. May block on the backend for its read
   * timeout.
   *
   * <p>The default refuses: a backend without shared state to read (such as {@code static}).
   *
   * @throws IllegalArgumentException if this backend cannot be read without joining, or for bad
   *     parameters
   * @throws org.rdzv.api.RendezvousConnectionException if the backend cannot be reached
   * @throws org.rdzv.api.RendezvousStateException if the stored state cannot be decoded
   */
  default Optional<RendezvousStatus> readStatus(RendezvousParameters parameters) {
    throw new IllegalArgumentException(
        "The rendezvous backend '" + name() + "' keeps no state that can be read without joining.");
  }
}
