package org.rdzv.dynamic;

import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import org.rdzv.api.Endpoint;
import org.rdzv.api.RendezvousConfig;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousException;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.Store;
import org.rdzv.api.StoreException;
import org.rdzv.api.events.NodeState;
import org.rdzv.dynamic.spi.CreatedBackend;
import org.rdzv.dynamic.spi.RendezvousBackendProvider;
import org.rdzv.store.StoreProtocol;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreOptions;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.store.TcpStoreServerOptions;

/**
 * The {@code c10d} backend: PyTorch's {@code c10d_rendezvous_backend.create_backend}. Registered
 * with {@link org.rdzv.api.RendezvousRegistry} through {@link java.util.ServiceLoader}.
 *
 * <p>Options: {@code store_type} ({@code tcp}, the default, or {@code file}); for {@code tcp},
 * {@code is_host} (inferred from the endpoint when absent), {@code read_timeout} (60 s) and {@code
 * store_protocol}; for {@code file}, the endpoint is the file's path.
 */
public final class C10dRendezvousProvider implements RendezvousBackendProvider {
  /** For {@link java.util.ServiceLoader}; programs use the registry. */
  public C10dRendezvousProvider() {}

  private static final System.Logger LOG = System.getLogger(C10dRendezvousProvider.class.getName());
  private static final String CONNECTION_FAILED = C10dBackend.CONNECTION_FAILED;

  @Override
  public String name() {
    return "c10d";
  }

  /**
   * The store from {@code store_type} ({@code tcp}: host or join the TCP store at the endpoint;
   * {@code file}: PyTorch's FileStore at the endpoint path) and the backend over it. What it owns:
   * the backend's own connections, the store, and a hosted server.
   */
  @Override
  public CreatedBackend createBackend(RendezvousParameters params, RendezvousSettings settings) {
    try {
      return create(params, settings);
    } catch (RuntimeException e) {
      // PyTorch's create_backend records why the backend could not be made.
      RendezvousEvents.function(
          "c10d_rendezvous_backend.py",
          "create_backend",
          params.runId(),
          RendezvousEvents.describe(e),
          NodeState.FAILED,
          e);
      throw e;
    }
  }

  /**
   * c10d gives {@code protocol} no other meaning: a value that is no rendezvous protocol is a typo.
   */
  static void checkProtocol(RendezvousParameters params) {
    params
        .getString("protocol")
        .ifPresent(
            p -> {
              if (RendezvousBackendProvider.protocolName(p).isEmpty()) {
                throw RendezvousBackendProvider.notAProtocol("protocol", p);
              }
            });
  }

  private CreatedBackend create(RendezvousParameters params, RendezvousSettings settings) {
    checkProtocol(params);
    List<AutoCloseable> owned = new ArrayList<>();
    Store store = createStore(params, settings.dialect(), owned);
    owned.add(0, store);
    try {
      C10dBackend backend = new C10dBackend(store, params.runId(), true);
      // The backend's watch and wait connection go first, the store and then its server last.
      owned.add(0, backend);
      return new CreatedBackend(backend, store, owned);
    } catch (RuntimeException e) {
      for (AutoCloseable resource : owned) {
        try {
          resource.close();
        } catch (Exception suppressed) {
          e.addSuppressed(suppressed);
        }
      }
      throw e;
    }
  }

  /**
   * The scalable protocol on the TCP store: hosts it as {@link #createBackend} would (or joins it),
   * then shares the connections among the process's handlers of the same store ({@code
   * store_type=file} has no scalable protocol).
   */
  @Override
  public org.rdzv.dynamic.spi.ScalableStore createScalableStore(
      RendezvousParameters params, RendezvousSettings settings, boolean readOnly) {
    checkProtocol(params);
    if (storeType(params).equals("file")) {
      throw new IllegalArgumentException(
          "protocol=scalable needs store_type=tcp; the file store has no scalable protocol.");
    }
    Endpoint endpoint = Endpoint.parse(params.endpoint(), Endpoint.C10D_DEFAULT_PORT);
    int readTimeout = readTimeout(params);
    StoreProtocol protocol = protocol(params);
    if (protocol == StoreProtocol.AUTO) {
      protocol = StoreProtocol.V2;
    }
    if (readOnly) {
      return TcpScalableStore.open(
          TcpStoreOptions.builder(endpoint.host(), endpoint.port())
              .timeout(statusTimeout(readTimeout))
              .protocol(protocol)
              .awaitServer(false)
              .build(),
          params.runId(),
          1,
          null);
    }
    Boolean configuredHost = params.getAsBool("is_host");
    boolean isHost =
        configuredHost != null
            ? configuredHost
            : RendezvousConfig.matchesMachineHostname(endpoint.host());
    TcpStoreServer server = null;
    String host = endpoint.host();
    int port = endpoint.port();
    if (isHost) {
      try {
        server = TcpStoreServer.start(TcpStoreServerOptions.builder().port(port).build());
        port = server.port();
        host = loopbackFor(endpoint.host());
        LOG.log(
            Level.INFO,
            "Process "
                + ProcessHandle.current().pid()
                + " hosts the TCP store for the C10d rendezvous backend.");
      } catch (StoreException | IllegalArgumentException e) {
        if (configuredHost != null) {
          throw new RendezvousConnectionException(CONNECTION_FAILED, e);
        }
        server = null; // another process hosts it: join as a client
      }
    }
    try {
      return TcpScalableStore.open(
          TcpStoreOptions.builder(host, port)
              .timeout(Duration.ofSeconds(readTimeout))
              .protocol(protocol)
              .build(),
          params.runId(),
          params.getAsInt("connections", 8),
          server);
    } catch (RuntimeException e) {
      if (server != null) {
        server.close();
      }
      throw e;
    }
  }

  /**
   * Reads without joining, hosting or writing: connects to the TCP store as a client (or opens an
   * existing FileStore; a missing file is no state), checks that the key exists and reads it. A
   * store that refuses fails at once; one that does not answer, after {@code read_timeout} or 5 s,
   * whichever is shorter.
   */
  @Override
  public Optional<byte[]> readState(RendezvousParameters params) {
    return readOnly(params, store -> C10dBackend.peek(store, params.runId()), Optional.empty());
  }

  /** The nodes' notes, read as {@link #readState} reads the state: as a client, writing nothing. */
  @Override
  public Map<NodeDescriptor, NodeNote> readNotes(
      RendezvousParameters params, Collection<NodeDescriptor> nodes) {
    return readOnly(params, store -> C10dBackend.readNotes(store, params.runId(), nodes), Map.of());
  }

  /**
   * Runs {@code read} on a client of the store the parameters name (a TCP store that refuses fails
   * at once; one that does not answer after {@code read_timeout} or 5 s, whichever is shorter), or
   * on an existing FileStore; {@code absent} when the file does not exist.
   */
  private static <T> T readOnly(
      RendezvousParameters params, java.util.function.Function<Store, T> read, T absent) {
    String storeType = storeType(params);
    int readTimeout = readTimeout(params);
    if (storeType.equals("file")) {
      Path path = Path.of(params.endpoint());
      if (!Files.exists(path)) {
        return absent;
      }
      try (Store store = FileStore.open(path, Duration.ofSeconds(readTimeout))) {
        return read.apply(store);
      } catch (StoreException e) {
        throw new RendezvousConnectionException(CONNECTION_FAILED, e);
      }
    }
    Endpoint endpoint = Endpoint.parse(params.endpoint(), Endpoint.C10D_DEFAULT_PORT);
    StoreProtocol protocol = protocol(params);
    try (TcpStore store =
        TcpStore.connect(
            TcpStoreOptions.builder(endpoint.host(), endpoint.port())
                .timeout(statusTimeout(readTimeout))
                .protocol(protocol)
                .awaitServer(false)
                .build())) {
      return read.apply(store);
    } catch (StoreException | IllegalArgumentException e) {
      throw new RendezvousConnectionException(CONNECTION_FAILED, e);
    }
  }

  /**
   * How long a status read may take: a look at the store, not a node that waits for it, so a store
   * that refuses is reported at once and one that does not answer after 5 s at most.
   */
  static final Duration STATUS_TIMEOUT = Duration.ofSeconds(5);

  private static Duration statusTimeout(int readTimeout) {
    Duration configured = Duration.ofSeconds(readTimeout);
    return configured.compareTo(STATUS_TIMEOUT) < 0 ? configured : STATUS_TIMEOUT;
  }

  private static String storeType(RendezvousParameters params) {
    String storeType =
        String.valueOf(params.get("store_type", "tcp")).strip().toLowerCase(Locale.ROOT);
    if (!storeType.equals("tcp") && !storeType.equals("file")) {
      throw new IllegalArgumentException(
          "Invalid store type given. Currently only supports file and tcp.");
    }
    return storeType;
  }

  private static StoreProtocol protocol(RendezvousParameters params) {
    return StoreProtocol.parse(params.getString("store_protocol").orElse("auto"));
  }

  private static int readTimeout(RendezvousParameters params) {
    int readTimeout = params.getAsInt("read_timeout", 60);
    if (readTimeout <= 0) {
      throw new IllegalArgumentException("The read timeout must be a positive integer.");
    }
    return readTimeout;
  }

  /**
   * Creates the store as PyTorch's {@code create_backend}; adds a server it starts to {@code
   * owned}.
   */
  private static Store createStore(
      RendezvousParameters params, StateDialect dialect, List<AutoCloseable> owned) {
    return switch (storeType(params)) {
      case "file" -> createFileStore(params);
      default -> createTcpStore(params, dialect, owned);
    };
  }

  private static Store createFileStore(RendezvousParameters params) {
    Path path;
    if (!params.endpoint().isBlank()) {
      path = Path.of(params.endpoint());
    } else {
      try {
        path = Files.createTempFile("rdzv-filestore-", "");
      } catch (java.io.IOException e) {
        throw new RendezvousException(
            "The file creation for C10d store has failed. See inner exception for details.", e);
      }
    }
    int readTimeout = readTimeout(params);
    try {
      return FileStore.open(path, Duration.ofSeconds(readTimeout));
    } catch (StoreException e) {
      throw new RendezvousConnectionException(CONNECTION_FAILED, e);
    }
  }

  private static Store createTcpStore(
      RendezvousParameters params, StateDialect dialect, List<AutoCloseable> owned) {
    Endpoint endpoint = Endpoint.parse(params.endpoint(), Endpoint.C10D_DEFAULT_PORT);
    Boolean configuredHost = params.getAsBool("is_host");
    boolean isHost =
        configuredHost != null
            ? configuredHost
            : RendezvousConfig.matchesMachineHostname(endpoint.host());
    int readTimeout = readTimeout(params);
    StoreProtocol protocol = protocol(params);
    for (boolean isServer : isHost ? new boolean[] {true, false} : new boolean[] {false}) {
      TcpStoreServer server = null;
      try {
        int port = endpoint.port();
        StoreProtocol clientProtocol = protocol;
        if (isServer) {
          // PyTorch's server binds every interface, whatever host the endpoint names.
          server = TcpStoreServer.start(TcpStoreServerOptions.builder().port(port).build());
          port = server.port();
          if (clientProtocol == StoreProtocol.AUTO) {
            // Our own server speaks both families; the 1.13 one lets this node watch the state.
            clientProtocol = dialect == StateDialect.V1_13 ? StoreProtocol.V1_13 : StoreProtocol.V2;
          }
        }
        TcpStore store =
            TcpStore.connect(
                TcpStoreOptions.builder(
                        isServer ? loopbackFor(endpoint.host()) : endpoint.host(), port)
                    .timeout(Duration.ofSeconds(readTimeout))
                    .protocol(clientProtocol)
                    .build());
        if (isServer) {
          String hosts =
              "Process "
                  + ProcessHandle.current().pid()
                  + " hosts the TCP store for the C10d rendezvous backend.";
          LOG.log(Level.INFO, hosts);
          RendezvousEvents.function(
              "c10d_rendezvous_backend.py",
              "_create_tcp_store",
              params.runId(),
              hosts,
              NodeState.INIT,
              null);
          owned.add(server);
        }
        return store;
      } catch (StoreException | IllegalArgumentException e) {
        if (server != null) {
          server.close();
        }
        if (!isServer || configuredHost != null) {
          throw new RendezvousConnectionException(CONNECTION_FAILED, e);
        }
        LOG.log(
            Level.DEBUG,
            "cannot host the C10d store on port {0} ({1}); joining it as a client",
            String.valueOf(endpoint.port()),
            e.getMessage());
      }
    }
    throw new IllegalStateException("unreachable");
  }

  private static String loopbackFor(String host) {
    return host.indexOf(':') >= 0 ? "::1" : "127.0.0.1";
  }
}
