package org.rdzv.dynamic;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.concurrent.locks.ReentrantLock;
import org.rdzv.api.Endpoint;
import org.rdzv.api.PrefixStore;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.api.Store;
import org.rdzv.api.StoreException;
import org.rdzv.store.StoreProtocol;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreOptions;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.store.TcpStoreServerOptions;

/**
 * PyTorch's {@code StaticTCPRendezvous}: the rank comes from the configuration, the world size is
 * {@code max_nodes}, rank 0 hosts the TCP store at the endpoint, and every round returns {@code
 * PrefixStore(run_id)} over it.
 */
final class StaticHandler implements RendezvousHandler {
  private static final System.Logger LOG = System.getLogger(StaticHandler.class.getName());
  private static final int DEFAULT_TIMEOUT_SECONDS = 600;

  private final String masterAddr;
  private final int masterPort;
  private final int rank;
  private final int worldSize;
  private final String runId;
  private final Duration timeout;
  private final StoreProtocol protocol;
  private final ReentrantLock lock = new ReentrantLock();
  private TcpStoreServer server;
  private TcpStore store;

  private StaticHandler(
      String masterAddr,
      int masterPort,
      int rank,
      int worldSize,
      String runId,
      Duration timeout,
      StoreProtocol protocol) {
    this.masterAddr = masterAddr;
    this.masterPort = masterPort;
    this.rank = rank;
    this.worldSize = worldSize;
    this.runId = runId;
    this.timeout = timeout;
    this.protocol = protocol;
  }

  /** PyTorch's {@code create_rdzv_handler} for {@code static}, with its checks and messages. */
  static StaticHandler create(RendezvousParameters params) {
    if (!params.config().containsKey("rank")) {
      throw new IllegalArgumentException(
          "rank is absent in RendezvousParameters.Try add --node_rank to the cmd request");
    }
    String endpoint = params.endpoint().strip();
    if (endpoint.isEmpty()) {
      throw new IllegalArgumentException(
          "endpoint is absent in RendezvousParametersTry add --master_port and --master_addr to the cmd request");
    }
    Endpoint parsed = Endpoint.parse(endpoint, -1);
    if (parsed.port() == -1) {
      throw new IllegalArgumentException(
          "Port is absent in endpoint: " + endpoint + ". Try launching with --master_port");
    }
    // PyTorch takes the rank as given (torchrun passes an int); text from a command line is
    // accepted here too.
    int rank = params.getAsInt("rank");
    int timeout =
        params.config().containsKey("timeout")
            ? params.getAsInt("timeout")
            : DEFAULT_TIMEOUT_SECONDS;
    StoreProtocol protocol = StoreProtocol.parse(params.getString("store_protocol").orElse("auto"));
    return new StaticHandler(
        parsed.host(),
        parsed.port(),
        rank,
        params.maxNodes(),
        params.runId(),
        Duration.ofSeconds(timeout),
        protocol);
  }

  @Override
  public String backend() {
    return "static";
  }

  @Override
  public RendezvousInfo nextRendezvous() {
    lock.lock();
    try {
      if (store == null) {
        LOG.log(Level.INFO, "Creating TCPStore as the c10d::Store implementation");
        try {
          int port = masterPort;
          String host = masterAddr;
          if (rank == 0) {
            server = TcpStoreServer.start(TcpStoreServerOptions.builder().port(masterPort).build());
            port = server.port();
            host = masterAddr.indexOf(':') >= 0 ? "::1" : "127.0.0.1";
          }
          store =
              TcpStore.connect(
                  TcpStoreOptions.builder(host, port)
                      .timeout(timeout)
                      .protocol(protocol)
                      .worldSize(worldSize)
                      .build());
        } catch (StoreException | IllegalArgumentException e) {
          if (server != null) {
            server.close();
            server = null;
          }
          throw new RendezvousConnectionException(
              "The connection to the static rendezvous store at "
                  + masterAddr
                  + ":"
                  + masterPort
                  + " has failed: "
                  + e.getMessage(),
              e);
        }
      }
      Store prefixed = new PrefixStore(runId, store);
      return new RendezvousInfo(
          prefixed, rank, worldSize, new RendezvousStoreInfo(masterAddr, masterPort), 0);
    } finally {
      lock.unlock();
    }
  }

  @Override
  public boolean isClosed() {
    return false;
  }

  @Override
  public void setClosed() {}

  @Override
  public int numNodesWaiting() {
    return 0;
  }

  @Override
  public String runId() {
    return runId;
  }

  @Override
  public boolean useAgentStore() {
    return true;
  }

  @Override
  public boolean shutdown() {
    return true;
  }

  /** Closes the client and, on rank 0, the hosted server. */
  @Override
  public void close() {
    lock.lock();
    try {
      if (store != null) {
        store.close();
      }
      if (server != null) {
        server.close();
      }
    } finally {
      lock.unlock();
    }
  }
}
