package org.rdzv.dynamic;

import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import org.rdzv.api.Endpoint;
import org.rdzv.api.RendezvousConfig;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousException;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.Store;
import org.rdzv.api.StoreException;
import org.rdzv.store.StoreProtocol;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreOptions;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.store.TcpStoreServerOptions;

/**
 * The {@code c10d} rendezvous: PyTorch's {@code c10d_rendezvous_backend.create_backend} plus {@code
 * create_handler}, and read-only access to a c10d rendezvous state.
 */
public final class C10dRendezvous {
  private static final System.Logger LOG = System.getLogger(C10dRendezvous.class.getName());
  private static final String CONNECTION_FAILED =
      "The connection to the C10d store has failed. See inner exception for details.";

  private C10dRendezvous() {}

  /** The store key of a run's state: {@code torch.rendezvous.<run_id>}. */
  public static String stateKey(String runId) {
    return "torch.rendezvous." + runId;
  }

  /**
   * A backend over {@code store}, as PyTorch's {@code C10dRendezvousBackend(store, run_id)}: writes
   * the "no state" sentinel if the key is missing. Java writers also signal changes to other Java
   * nodes (see the class comment of the implementation); PyTorch ignores the signals.
   *
   * @throws IllegalArgumentException if {@code runId} is empty
   * @throws RendezvousConnectionException if the store fails
   */
  public static RendezvousBackend backend(Store store, String runId) {
    return new C10dBackend(store, runId, true);
  }

  /**
   * Creates a {@code c10d} handler: the store from {@code store_type} ({@code tcp}: host or join
   * the TCP store at the endpoint; {@code file}: PyTorch's FileStore at the endpoint path), the
   * backend over it and the handler. The handler owns what was created here: {@link
   * DynamicRendezvousHandler#close()} releases it (a hosted server stops).
   *
   * <p>The state dialect, when the store holds no state yet and configuration names none ({@code
   * state_dialect}, {@code store_protocol}): 1.13 when the store server speaks only PyTorch 1.13's
   * protocol, else 2.6+.
   *
   * @throws IllegalArgumentException for invalid parameters, with PyTorch's messages
   * @throws RendezvousConnectionException if the store cannot be reached or hosted
   */
  public static DynamicRendezvousHandler handler(RendezvousParameters params) {
    RendezvousSettings settings = RendezvousSettings.from(params); // validate first
    OwnedStore owned = createStore(params);
    if (owned.server() == null && owned.store() instanceof TcpStore tcp) {
      // A store server that answers only the 1.13 protocol is PyTorch 1.13's (ours and 2.x's
      // answer the 2.x handshake): its nodes write the 1.13 dialect.
      settings =
          settings.withDefaultDialect(
              tcp.protocol() == StoreProtocol.V1_13 ? StateDialect.V1_13 : StateDialect.V2_6);
    }
    C10dBackend backend;
    try {
      backend = new C10dBackend(owned.store(), params.runId(), true);
    } catch (RuntimeException e) {
      owned.close();
      throw e;
    }
    AutoCloseable resources =
        () -> {
          backend.close();
          owned.close();
        };
    return DynamicHandler.create(backend, owned.store(), params, settings, resources);
  }

  /**
   * Reads the state of {@code runId} without writing anything (not even the sentinel PyTorch's
   * constructor writes): empty when the key is missing or holds the sentinel.
   *
   * @throws RendezvousStateException if the stored value cannot be decoded
   * @throws RendezvousConnectionException if the store fails
   */
  public static Optional<StateSnapshot> readState(Store store, String runId) {
    String key = stateKey(runId);
    byte[] value;
    try {
      if (!store.check(List.of(key))) {
        return Optional.empty();
      }
      value = store.get(key);
    } catch (StoreException e) {
      throw new RendezvousConnectionException(CONNECTION_FAILED, e);
    }
    if (Arrays.equals(value, C10dBackend.NULL_SENTINEL)) {
      return Optional.empty();
    }
    byte[] pickle;
    try {
      pickle = Base64.getDecoder().decode(value);
    } catch (IllegalArgumentException e) {
      throw new RendezvousStateException(
          "The state object is corrupt. See inner exception for details.", e);
    }
    return Optional.of(StateSnapshot.decode(pickle));
  }

  /**
   * Reads the state of the rendezvous {@code params} names without joining, hosting or writing:
   * connects to the TCP store as a client (or opens an existing FileStore) and reads. Empty when
   * there is no state.
   *
   * @throws RendezvousConnectionException if the store cannot be reached
   * @throws RendezvousStateException if the stored value cannot be decoded
   */
  public static Optional<StateSnapshot> readState(RendezvousParameters params) {
    String storeType =
        String.valueOf(params.get("store_type", "tcp")).strip().toLowerCase(Locale.ROOT);
    int readTimeout = readTimeout(params);
    if (storeType.equals("file")) {
      Path path = Path.of(params.endpoint());
      if (!Files.exists(path)) {
        return Optional.empty();
      }
      try (Store store = FileStore.open(path, Duration.ofSeconds(readTimeout))) {
        return readState(store, params.runId());
      } catch (StoreException e) {
        throw new RendezvousConnectionException(CONNECTION_FAILED, e);
      }
    }
    if (!storeType.equals("tcp")) {
      throw new IllegalArgumentException(
          "Invalid store type given. Currently only supports file and tcp.");
    }
    Endpoint endpoint = Endpoint.parse(params.endpoint(), Endpoint.C10D_DEFAULT_PORT);
    StoreProtocol protocol = StoreProtocol.parse(params.getString("store_protocol").orElse("auto"));
    try (TcpStore store =
        TcpStore.connect(
            TcpStoreOptions.builder(endpoint.host(), endpoint.port())
                .timeout(Duration.ofSeconds(readTimeout))
                .protocol(protocol)
                .build())) {
      return readState(store, params.runId());
    } catch (StoreException | IllegalArgumentException e) {
      throw new RendezvousConnectionException(CONNECTION_FAILED, e);
    }
  }

  /** A store and whatever must be closed with it. */
  record OwnedStore(Store store, TcpStoreServer server) implements AutoCloseable {
    @Override
    public void close() {
      try {
        store.close();
      } finally {
        if (server != null) {
          server.close();
        }
      }
    }
  }

  /**
   * Creates the store as PyTorch's {@code create_backend}: {@code store_type} {@code tcp} or {@code
   * file}; for {@code tcp}, {@code is_host} (inferred from the endpoint when absent), {@code
   * read_timeout} (60 s) and {@code store_protocol}.
   */
  static OwnedStore createStore(RendezvousParameters params) {
    String storeType =
        String.valueOf(params.get("store_type", "tcp")).strip().toLowerCase(Locale.ROOT);
    switch (storeType) {
      case "file" -> {
        return new OwnedStore(createFileStore(params), null);
      }
      case "tcp" -> {
        return createTcpStore(params);
      }
      default ->
          throw new IllegalArgumentException(
              "Invalid store type given. Currently only supports file and tcp.");
    }
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

  private static int readTimeout(RendezvousParameters params) {
    int readTimeout = params.getAsInt("read_timeout", 60);
    if (readTimeout <= 0) {
      throw new IllegalArgumentException("The read timeout must be a positive integer.");
    }
    return readTimeout;
  }

  private static OwnedStore createTcpStore(RendezvousParameters params) {
    Endpoint endpoint = Endpoint.parse(params.endpoint(), Endpoint.C10D_DEFAULT_PORT);
    Boolean configuredHost = params.getAsBool("is_host");
    boolean isHost =
        configuredHost != null
            ? configuredHost
            : RendezvousConfig.matchesMachineHostname(endpoint.host());
    int readTimeout = readTimeout(params);
    StoreProtocol protocol = StoreProtocol.parse(params.getString("store_protocol").orElse("auto"));
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
            clientProtocol =
                RendezvousSettings.from(params).dialect() == StateDialect.V1_13
                    ? StoreProtocol.V1_13
                    : StoreProtocol.V2;
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
          LOG.log(
              Level.INFO,
              "Process {0} hosts the TCP store for the C10d rendezvous backend.",
              String.valueOf(ProcessHandle.current().pid()));
        }
        return new OwnedStore(store, server);
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
