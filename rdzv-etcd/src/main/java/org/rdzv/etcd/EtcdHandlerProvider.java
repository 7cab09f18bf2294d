package org.rdzv.etcd;

import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.spi.RendezvousHandlerProvider;

/** Registers PyTorch's legacy {@code etcd} handler. */
public final class EtcdHandlerProvider implements RendezvousHandlerProvider {
  @Override
  public String name() {
    return "etcd";
  }

  @Override
  public RendezvousHandler create(RendezvousParameters parameters) {
    return EtcdRendezvous.legacyHandler(parameters);
  }
}
