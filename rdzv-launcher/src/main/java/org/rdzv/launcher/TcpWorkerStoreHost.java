package org.rdzv.launcher;

import org.rdzv.store.TcpStoreServer;

/** Hosts the workers' store with rdzv's own TCPStore server, which 1.13 and 2.x clients use. */
enum TcpWorkerStoreHost implements WorkerStoreHost {
  INSTANCE;

  @Override
  public Server start(String bindHost) {
    TcpStoreServer server = TcpStoreServer.start(bindHost, 0);
    return new Server() {
      @Override
      public int port() {
        return server.port();
      }

      @Override
      public void close() {
        server.close();
      }
    };
  }
}
