package org.rdzv.api;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.ServiceConfigurationError;
import java.util.ServiceLoader;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import org.rdzv.api.spi.RendezvousHandlerProvider;

/**
 * Named rendezvous backends: PyTorch's {@code RendezvousHandlerRegistry} plus its default
 * registrations.
 *
 * <p>{@link #handler(RendezvousParameters)} is the one entry point most programs need. The built-in
 * names {@code c10d}, {@code etcd}, {@code etcd-v2}, {@code etcd-v3} and {@code static} are always
 * registered; each is served by a {@link RendezvousHandlerProvider} from the rdzv module that
 * implements it, and asking for one whose module is not on the class path says so. Third-party
 * providers on the class path are registered too. Thread-safe.
 */
public final class RendezvousRegistry {
  private static final System.Logger LOG = System.getLogger(RendezvousRegistry.class.getName());

  /** Built-in backend names and the module that implements each. */
  public static final Map<String, String> BUILT_INS =
      Map.of(
          "c10d", "rdzv-dynamic",
          "static", "rdzv-dynamic",
          "etcd", "rdzv-etcd",
          "etcd-v2", "rdzv-etcd",
          "etcd-v3", "rdzv-etcd");

  private static final class Holder {
    static final RendezvousRegistry DEFAULT = withDefaults();
  }

  private final Map<String, RendezvousHandlerCreator> creators = new ConcurrentHashMap<>();

  /** An empty registry (no built-ins), mostly for tests and embedding. */
  public RendezvousRegistry() {}

  /** The process-wide registry with the built-ins and every provider on the class path. */
  public static RendezvousRegistry defaultRegistry() {
    return Holder.DEFAULT;
  }

  /** Creates a handler with the default registry: PyTorch's {@code get_rendezvous_handler}. */
  public static RendezvousHandler handler(RendezvousParameters parameters) {
    return defaultRegistry().create(parameters);
  }

  /** A new registry holding the built-ins and every provider found by {@link ServiceLoader}. */
  public static RendezvousRegistry withDefaults() {
    RendezvousRegistry registry = new RendezvousRegistry();
    Map<String, RendezvousHandlerProvider> found = new TreeMap<>();
    ServiceLoader<RendezvousHandlerProvider> loader =
        ServiceLoader.load(
            RendezvousHandlerProvider.class, RendezvousRegistry.class.getClassLoader());
    var iterator = loader.iterator();
    while (true) {
      RendezvousHandlerProvider provider;
      try {
        if (!iterator.hasNext()) {
          break;
        }
        provider = iterator.next();
      } catch (ServiceConfigurationError e) {
        LOG.log(
            Level.WARNING,
            "skipping a rendezvous backend provider that failed to load: {0}",
            e.getMessage());
        continue;
      }
      found.putIfAbsent(provider.name(), provider);
    }
    for (String name : new TreeMap<>(BUILT_INS).keySet()) {
      RendezvousHandlerProvider provider = found.remove(name);
      registry.register(name, provider != null ? new ProviderCreator(provider) : new Missing(name));
    }
    for (RendezvousHandlerProvider provider : found.values()) {
      try {
        registry.register(provider.name(), new ProviderCreator(provider));
      } catch (IllegalArgumentException e) {
        LOG.log(Level.WARNING, "skipping rendezvous backend provider: {0}", e.getMessage());
      }
    }
    return registry;
  }

  /**
   * Registers {@code creator} under {@code name}. Registering an equal creator again does nothing;
   * a different creator for a taken name is refused.
   *
   * @throws IllegalArgumentException for an empty name or a name taken by another creator
   */
  public void register(String name, RendezvousHandlerCreator creator) {
    if (name == null || name.isEmpty()) {
      throw new IllegalArgumentException("The rendezvous backend name must be a non-empty string.");
    }
    Objects.requireNonNull(creator, "creator");
    RendezvousHandlerCreator current = creators.putIfAbsent(name, creator);
    if (current != null && !current.equals(creator)) {
      throw new IllegalArgumentException(
          "The rendezvous backend '"
              + name
              + "' cannot be registered with '"
              + creator
              + "' as it is already registered with '"
              + current
              + "'.");
    }
  }

  /** Whether a creator is registered under {@code name}. */
  public boolean isRegistered(String name) {
    return creators.containsKey(name);
  }

  /** The registered names, sorted. */
  public List<String> names() {
    List<String> names = new ArrayList<>(creators.keySet());
    names.sort(null);
    return names;
  }

  /**
   * Creates a handler for {@code parameters.backend()}.
   *
   * @throws IllegalArgumentException if no backend of that name is registered
   * @throws IllegalStateException if the handler reports a different backend name
   */
  public RendezvousHandler create(RendezvousParameters parameters) {
    RendezvousHandlerCreator creator = creators.get(parameters.backend());
    if (creator == null) {
      throw new IllegalArgumentException(
          "The rendezvous backend '"
              + parameters.backend()
              + "' is not registered. Did you forget to call `register`?");
    }
    RendezvousHandler handler = creator.create(parameters);
    if (!parameters.backend().equals(handler.backend())) {
      throw new IllegalStateException(
          "The rendezvous backend '"
              + handler.backend()
              + "' does not match the requested backend '"
              + parameters.backend()
              + "'.");
    }
    return handler;
  }

  private record ProviderCreator(RendezvousHandlerProvider provider)
      implements RendezvousHandlerCreator {
    @Override
    public RendezvousHandler create(RendezvousParameters parameters) {
      return provider.create(parameters);
    }

    @Override
    public String toString() {
      return provider.getClass().getName();
    }
  }

  private record Missing(String name) implements RendezvousHandlerCreator {
    @Override
    public RendezvousHandler create(RendezvousParameters parameters) {
      throw new IllegalStateException(
          "The rendezvous backend '"
              + name
              + "' is built in, but its module "
              + BUILT_INS.get(name)
              + " is not on the class path.");
    }

    @Override
    public String toString() {
      return "built-in " + name + " (" + BUILT_INS.get(name) + ")";
    }
  }
}
