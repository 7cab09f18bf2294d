package org.rdzv.launcher;

/**
 * Starts the store that an agent hosts for the workers of one round (when every agent of the job
 * supports it): a fresh TCPStore server per round, so no key of an earlier round survives.
 */
interface WorkerStoreHost {

  /** A running server; {@link #close()} stops it. */
  interface Server extends AutoCloseable {
    int port();

    @Override
    void close();
  }

  /**
   * Binds a new server on {@code bindHost} (empty: every address) and a free port.
   *
   * @throws org.rdzv.api.StoreException if it cannot bind
   */
  Server start(String bindHost);
}
