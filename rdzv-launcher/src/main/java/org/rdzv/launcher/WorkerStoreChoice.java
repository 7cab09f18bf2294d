package org.rdzv.launcher;

import java.nio.charset.StandardCharsets;
import org.rdzv.api.Endpoint;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.api.Store;

/**
 * Where the workers of a round find their store, and who serves it (reference §9.2, §9.4):
 *
 * <ul>
 *   <li>{@code static}: the rendezvous endpoint, whose store agent 0 hosts; workers are its
 *       clients. Under 1.13's protocol agent 0 also publishes it as {@code MASTER_ADDR}/{@code
 *       MASTER_PORT} and every agent reads it back, as torchrun 1.13 does; 2.x agents take it from
 *       the command line and write nothing.
 *   <li>a handler that gives bootstrap information (the 2.x state dialects, PyTorch 2.x's {@code
 *       RendezvousStoreInfo}): that address, and the handler's {@code useAgentStore()}.
 *   <li>otherwise agent 0 publishes {@code MASTER_ADDR}/{@code MASTER_PORT}. If every agent of the
 *       round is an rdzv agent willing to host, agent 0 serves a fresh store for this round (no key
 *       of an earlier round survives) and workers are its clients; else (a torchrun agent takes
 *       part) PyTorch's rule applies: a free port, on which worker rank 0 hosts the store.
 * </ul>
 *
 * @param store what the workers' environment says
 * @param hosted the server this agent started for the round, which it closes when the round ends;
 *     {@code null} when it serves none
 */
record WorkerStoreChoice(WorkerStore store, WorkerStoreHost.Server hosted) {

  /**
   * Decides (agent 0 publishes, the others read) for one round.
   *
   * @param roundStore the round's store, where {@code MASTER_ADDR}/{@code MASTER_PORT} go
   * @param localAddr {@code --local-addr}, else this host's FQDN is published
   * @throws org.rdzv.api.StoreException if the store fails
   */
  static WorkerStoreChoice choose(
      String backend,
      String endpoint,
      String localAddr,
      RendezvousStoreInfo bootstrap,
      boolean handlerUseAgentStore,
      AgentStoreProtocol.Assignment assignment,
      int groupRank,
      Store roundStore,
      WorkerStoreHost storeHost) {
    if ("static".equals(backend)) {
      Endpoint ep = Endpoint.parse(endpoint, 0);
      if (assignment.protocol() == AgentProtocol.V2) {
        return new WorkerStoreChoice(new WorkerStore(ep.host(), ep.port(), true), null);
      }
      if (groupRank == 0) {
        publish(roundStore, ep.host(), ep.port());
      }
      return new WorkerStoreChoice(read(roundStore, true), null);
    }
    if (bootstrap != null) {
      return new WorkerStoreChoice(
          new WorkerStore(bootstrap.masterAddr(), bootstrap.masterPort(), handlerUseAgentStore),
          null);
    }
    boolean agentStore = assignment.everyAgentHostsStores();
    WorkerStoreHost.Server server = null;
    if (groupRank == 0) {
      String addr = localAddr != null ? localAddr : RendezvousStoreInfo.fqdn();
      int port;
      if (agentStore) {
        server = storeHost.start("");
        port = server.port();
      } else {
        port = RendezvousStoreInfo.freePort();
      }
      try {
        publish(roundStore, addr, port);
      } catch (RuntimeException e) {
        if (server != null) {
          server.close();
        }
        throw e;
      }
    }
    try {
      return new WorkerStoreChoice(read(roundStore, agentStore), server);
    } catch (RuntimeException e) {
      if (server != null) {
        server.close();
      }
      throw e;
    }
  }

  private static void publish(Store store, String addr, int port) {
    store.set(RendezvousStoreInfo.MASTER_ADDR_KEY, addr.getBytes(StandardCharsets.UTF_8));
    store.set(
        RendezvousStoreInfo.MASTER_PORT_KEY,
        Integer.toString(port).getBytes(StandardCharsets.UTF_8));
  }

  private static WorkerStore read(Store store, boolean useAgentStore) {
    String addr =
        new String(store.get(RendezvousStoreInfo.MASTER_ADDR_KEY), StandardCharsets.UTF_8);
    String port =
        new String(store.get(RendezvousStoreInfo.MASTER_PORT_KEY), StandardCharsets.UTF_8);
    try {
      return new WorkerStore(addr, Integer.parseInt(port.strip()), useAgentStore);
    } catch (NumberFormatException e) {
      throw new RendezvousStateException("MASTER_PORT in the store is not a number: " + port, e);
    }
  }
}
