package org.rdzv.api;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;

/**
 * Where the workers of a round find their store: PyTorch 2.x's {@code RendezvousStoreInfo}.
 *
 * @param masterAddr host of the store workers connect to
 * @param masterPort its port
 */
public record RendezvousStoreInfo(String masterAddr, int masterPort) {
  public static final String MASTER_ADDR_KEY = "MASTER_ADDR";
  public static final String MASTER_PORT_KEY = "MASTER_PORT";

  /**
   * PyTorch's {@code RendezvousStoreInfo.build}: rank 0 publishes its address ({@code localAddr},
   * else this host's FQDN) and {@code serverPort} (else a free port) in {@code store}; every rank
   * then reads both back (blocking up to the store's timeout).
   */
  public static RendezvousStoreInfo build(
      int rank, Store store, String localAddr, Integer serverPort) {
    if (rank == 0) {
      String addr = localAddr != null ? localAddr : fqdn();
      int port = serverPort != null ? serverPort : freePort();
      store.set(MASTER_ADDR_KEY, addr.getBytes(StandardCharsets.UTF_8));
      store.set(MASTER_PORT_KEY, Integer.toString(port).getBytes(StandardCharsets.UTF_8));
    }
    String addr = new String(store.get(MASTER_ADDR_KEY), StandardCharsets.UTF_8);
    String port = new String(store.get(MASTER_PORT_KEY), StandardCharsets.UTF_8);
    try {
      return new RendezvousStoreInfo(addr, Integer.parseInt(port.trim()));
    } catch (NumberFormatException e) {
      throw new RendezvousStateException("MASTER_PORT in the store is not a number: " + port, e);
    }
  }

  /** This host's fully qualified name, as Python's {@code socket.getfqdn()} would give. */
  public static String fqdn() {
    try {
      return InetAddress.getLocalHost().getCanonicalHostName();
    } catch (UnknownHostException e) {
      return "localhost";
    }
  }

  /** A port that was free a moment ago (bound to port 0, then released), as PyTorch picks one. */
  public static int freePort() {
    try (ServerSocket socket = new ServerSocket(0)) {
      return socket.getLocalPort();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot find a free port", e);
    }
  }
}
