package org.rdzv.launcher;

import java.util.concurrent.atomic.AtomicInteger;
import org.rdzv.api.PrefixStore;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreServer;

/**
 * A one-node rendezvous over a real TCP store (our server on port 0): each round is complete at
 * once with this node as rank 0. {@link #waiting} lets a test pretend that nodes wait to join; the
 * next round clears it. For agent tests that are about processes, not about rendezvous.
 */
final class SingleNodeHandler implements RendezvousHandler, AutoCloseable {
  final TcpStoreServer server = TcpStoreServer.start("127.0.0.1", 0);
  final TcpStore client = TcpStore.connect("127.0.0.1", server.port());
  final AtomicInteger rounds = new AtomicInteger();
  final AtomicInteger waiting = new AtomicInteger();
  final String runId;
  volatile boolean shutDown;

  /** Thrown by the next {@link #nextRendezvous()} when set. */
  volatile RuntimeException failNext;

  SingleNodeHandler(String runId) {
    this.runId = runId;
  }

  @Override
  public String backend() {
    return "test";
  }

  @Override
  public RendezvousInfo nextRendezvous() {
    RuntimeException failure = failNext;
    if (failure != null) {
      failNext = null;
      throw failure;
    }
    int round = rounds.getAndIncrement();
    waiting.set(0);
    return new RendezvousInfo(new PrefixStore("test.rdzv." + round, client), 0, 1, null, round);
  }

  @Override
  public boolean isClosed() {
    return shutDown;
  }

  @Override
  public void setClosed() {
    shutDown = true;
  }

  @Override
  public int numNodesWaiting() {
    return waiting.get();
  }

  @Override
  public String runId() {
    return runId;
  }

  @Override
  public boolean shutdown() {
    shutDown = true;
    return true;
  }

  @Override
  public void close() {
    client.close();
    server.close();
  }
}
