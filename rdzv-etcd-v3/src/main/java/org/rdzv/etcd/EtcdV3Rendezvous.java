package org.rdzv.etcd;

import java.time.Duration;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.Store;
import org.rdzv.dynamic.DynamicRendezvousHandler;

/**
 * Entry points of the {@code etcd-v3} backend (module rdzv-etcd-v3, on jetcd) for programs that
 * want it without the registry; see {@link EtcdV3HandlerProvider}, the one implementation.
 */
public final class EtcdV3Rendezvous {
  private static final EtcdV3HandlerProvider V3 = new EtcdV3HandlerProvider();

  private EtcdV3Rendezvous() {}

  /**
   * The {@code etcd-v3} handler; {@link DynamicRendezvousHandler#close()} releases the gRPC client
   * (shared by every handler of this process with the same connection options). Checks that etcd
   * answers before returning.
   *
   * @throws IllegalArgumentException for bad options
   * @throws RendezvousConnectionException naming the endpoints when etcd cannot be reached
   */
  public static DynamicRendezvousHandler v3Handler(RendezvousParameters params) {
    return V3.create(params);
  }

  /**
   * A store on etcd v3 keys {@code prefix/<key>} with raw values; {@link Store#close()} releases
   * its gRPC client. {@code timeout} null means 300 s.
   */
  public static Store v3Store(EtcdConnection connection, String prefix, Duration timeout) {
    return new EtcdV3Store(EtcdV3Session.acquire(connection), prefix, timeout, true);
  }
}
