package org.rdzv.api.spi;

import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;

/**
 * A rendezvous backend found through {@link java.util.ServiceLoader}: the Java counterpart of
 * PyTorch 2.x's {@code torchrun.handlers} entry points.
 *
 * <p>A jar that ships a backend lists its provider class in {@code
 * META-INF/services/org.rdzv.api.spi.RendezvousHandlerProvider}. The default registry registers
 * every provider under {@link #name()} when it is first used; a provider whose name is taken by a
 * different creator is logged and skipped. Providers are instantiated once, with their public
 * no-argument constructor, and must be thread-safe.
 */
public interface RendezvousHandlerProvider {

  /** The backend name users select, e.g. {@code c10d}; case-sensitive. */
  String name();

  /**
   * Creates a handler. Called once per {@code RendezvousRegistry.create} call; may block while it
   * connects to its backend, and reports bad parameters as {@link IllegalArgumentException}.
   */
  RendezvousHandler create(RendezvousParameters parameters);
}
