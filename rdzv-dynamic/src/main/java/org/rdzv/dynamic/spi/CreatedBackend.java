package org.rdzv.dynamic.spi;

import java.lang.System.Logger.Level;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import org.rdzv.api.Store;
import org.rdzv.dynamic.RendezvousBackend;

/**
 * What {@link RendezvousBackendProvider#createBackend} creates for one handler: PyTorch's {@code
 * create_backend} returns {@code (backend, store)}; rdzv adds what the handler owns and must
 * release.
 *
 * <p>The handler closes this when it is {@linkplain org.rdzv.api.RendezvousHandler#close() closed},
 * after its heartbeats stopped: {@link #owned()} in order, each once, failures logged (closing
 * never throws). A provider that fails half-way closes what it created itself.
 *
 * @param backend where the state lives
 * @param store the store the nodes share; each round gets it behind a round prefix
 * @param owned what to close with the handler, in order (typically the backend's connections, the
 *     store, a store server this node hosts); may be empty when the caller keeps ownership
 */
public record CreatedBackend(RendezvousBackend backend, Store store, List<AutoCloseable> owned)
    implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(CreatedBackend.class.getName());

  public CreatedBackend {
    Objects.requireNonNull(backend, "backend");
    Objects.requireNonNull(store, "store");
    owned = List.copyOf(owned);
  }

  /** A backend and store that belong to the caller: closing releases nothing. */
  public static CreatedBackend unowned(RendezvousBackend backend, Store store) {
    return new CreatedBackend(backend, store, List.of());
  }

  /** Closes {@link #owned()} in order; each resource once even if this is called again. */
  @Override
  public void close() {
    for (AutoCloseable resource : owned) {
      try {
        resource.close();
      } catch (Exception e) {
        LOG.log(Level.DEBUG, "closing {0} of backend {1} failed: {2}", resource, backend.name(), e);
      }
    }
  }

  /** Wraps {@code action} so that it runs at most once, however often it is closed. */
  public static AutoCloseable once(Runnable action) {
    AtomicBoolean done = new AtomicBoolean();
    return () -> {
      if (done.compareAndSet(false, true)) {
        action.run();
      }
    };
  }
}
