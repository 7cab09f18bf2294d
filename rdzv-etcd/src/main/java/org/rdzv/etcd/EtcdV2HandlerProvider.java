package org.rdzv.etcd;

import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.spi.RendezvousHandlerProvider;

/** Registers the {@code etcd-v2} backend ({@link EtcdRendezvous#v2Handler}). */
public final class EtcdV2HandlerProvider implements RendezvousHandlerProvider {
  @Override
  public String name() {
    return "etcd-v2";
  }

  @Override
  public RendezvousHandler create(RendezvousParameters parameters) {
    return EtcdRendezvous.v2Handler(parameters);
  }
}
