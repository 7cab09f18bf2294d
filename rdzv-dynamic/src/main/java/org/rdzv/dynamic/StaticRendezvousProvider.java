package org.rdzv.dynamic;

import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.spi.RendezvousHandlerProvider;

/**
 * Registers {@code static} with {@link org.rdzv.api.RendezvousRegistry}: PyTorch's {@code
 * StaticTCPRendezvous} (rank from the {@code rank} config key, world size {@code max_nodes}, the
 * store hosted by rank 0 at the endpoint).
 */
public final class StaticRendezvousProvider implements RendezvousHandlerProvider {
  /** For {@link java.util.ServiceLoader}; programs use the registry. */
  public StaticRendezvousProvider() {}

  @Override
  public String name() {
    return "static";
  }

  @Override
  public RendezvousHandler create(RendezvousParameters parameters) {
    return StaticHandler.create(parameters);
  }
}
