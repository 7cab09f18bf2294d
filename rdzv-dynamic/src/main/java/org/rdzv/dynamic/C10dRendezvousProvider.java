package org.rdzv.dynamic;

import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.spi.RendezvousHandlerProvider;

/** Registers {@code c10d} with {@link org.rdzv.api.RendezvousRegistry}. */
public final class C10dRendezvousProvider implements RendezvousHandlerProvider {
  @Override
  public String name() {
    return "c10d";
  }

  @Override
  public RendezvousHandler create(RendezvousParameters parameters) {
    return C10dRendezvous.handler(parameters);
  }
}
