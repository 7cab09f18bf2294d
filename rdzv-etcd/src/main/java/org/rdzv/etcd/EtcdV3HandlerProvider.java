package org.rdzv.etcd;

import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.spi.RendezvousHandlerProvider;

/** Registers the {@code etcd-v3} backend ({@link EtcdRendezvous#v3Handler}). */
public final class EtcdV3HandlerProvider implements RendezvousHandlerProvider {
  @Override
  public String name() {
    return "etcd-v3";
  }

  @Override
  public RendezvousHandler create(RendezvousParameters parameters) {
    return EtcdRendezvous.v3Handler(parameters);
  }
}
