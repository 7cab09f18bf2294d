package org.rdzv.api;

import java.lang.System.Logger.Level;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
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
 * providers on the class path are registered too. {@link #readStatus(RendezvousParameters)} reads a
 * rendezvous of any registered provider without joining it. Thread-safe.
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
          "etcd-v3", "rdzv-etcd-v3");

  private static final class Holder {
    static final RendezvousRegistry DEFAULT = withDefaults();
  }

  private final Map<String, RendezvousHandlerProvider> providers = new ConcurrentHashMap<>();

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
      registry.register(provider != null ? provider : new Missing(name));
    }
    for (RendezvousHandlerProvider provider : found.values()) {
      try {
        registry.register(provider);
      } catch (IllegalArgumentException e) {
        LOG.log(Level.WARNING, "skipping rendezvous backend provider: {0}", e.getMessage());
      }
    }
    return registry;
  }

  /**
   * Registers {@code creator} under {@code name}. Registering an equal creator again does nothing;
   * a different creator for a taken name is refused. A rendezvous registered this way cannot be
   * {@linkplain #readStatus read without joining}; register a {@link RendezvousHandlerProvider} for
   * that.
   *
   * @throws IllegalArgumentException for an empty name or a name taken by another creator
   */
  public void register(String name, RendezvousHandlerCreator creator) {
    Objects.requireNonNull(creator, "creator");
    put(name, new CreatorProvider(name, creator));
  }

  /**
   * Registers {@code provider} under its {@link RendezvousHandlerProvider#name() name}, for both
   * {@link #create} and {@link #readStatus}. Registering an equal provider again does nothing; a
   * different one for a taken name is refused.
   *
   * @throws IllegalArgumentException for an empty name or a name taken by another provider
   */
  public void register(RendezvousHandlerProvider provider) {
    Objects.requireNonNull(provider, "provider");
    put(provider.name(), provider);
  }

  private void put(String name, RendezvousHandlerProvider provider) {
    if (name == null || name.isEmpty()) {
      throw new IllegalArgumentException("The rendezvous backend name must be a non-empty string.");
    }
    RendezvousHandlerProvider current = providers.putIfAbsent(name, provider);
    if (current != null && !current.equals(provider)) {
      throw new IllegalArgumentException(
          "The rendezvous backend '"
              + name
              + "' cannot be registered with '"
              + describe(provider)
              + "' as it is already registered with '"
              + describe(current)
              + "'.");
    }
  }

  private static String describe(RendezvousHandlerProvider provider) {
    return provider instanceof CreatorProvider || provider instanceof Missing
        ? provider.toString()
        : provider.getClass().getName();
  }

  /** Whether a creator is registered under {@code name}. */
  public boolean isRegistered(String name) {
    return providers.containsKey(name);
  }

  /** The registered names, sorted. */
  public List<String> names() {
    List<String> names = new ArrayList<>(providers.keySet());
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
    RendezvousHandler handler = registered(parameters.backend()).create(parameters);
    if (!parameters.backend().equals(handler.backend())) {
      handler.close();
      throw new IllegalStateException(
          "The rendezvous backend '"
              + handler.backend()
              + "' does not match the requested backend '"
              + parameters.backend()
              + "'.");
    }
    return handler;
  }

  /**
   * Reads the rendezvous {@code parameters} name without joining, hosting or writing anything (for
   * {@code rdzv status}): {@link RendezvousHandlerProvider#readStatus} of the backend's provider.
   * Empty when the rendezvous has no state yet.
   *
   * @throws IllegalArgumentException if no backend of that name is registered, or it cannot be read
   *     without joining
   * @throws RendezvousConnectionException if the backend cannot be reached
   * @throws RendezvousStateException if the stored state cannot be decoded
   */
  public Optional<RendezvousStatus> readStatus(RendezvousParameters parameters) {
    return registered(parameters.backend()).readStatus(parameters);
  }

  /**
   * The provider registered under {@code name}, if any (a creator registered by name is wrapped in
   * one that cannot read a rendezvous; a built-in whose module is missing in one that says so).
   */
  public Optional<RendezvousHandlerProvider> provider(String name) {
    return Optional.ofNullable(providers.get(name));
  }

  private RendezvousHandlerProvider registered(String name) {
    RendezvousHandlerProvider provider = providers.get(name);
    if (provider == null) {
      throw new IllegalArgumentException(
          "The rendezvous backend '"
              + name
              + "' is not registered. Did you forget to call `register`?");
    }
    return provider;
  }

  /** A creator registered by name: it creates handlers, and cannot read a rendezvous. */
  private record CreatorProvider(String name, RendezvousHandlerCreator creator)
      implements RendezvousHandlerProvider {
    @Override
    public RendezvousHandler create(RendezvousParameters parameters) {
      return creator.create(parameters);
    }

    @Override
    public String toString() {
      return creator.toString();
    }
  }

  private record Missing(String name) implements RendezvousHandlerProvider {
    @Override
    public RendezvousHandler create(RendezvousParameters parameters) {
      throw missing();
    }

    @Override
    public Optional<RendezvousStatus> readStatus(RendezvousParameters parameters) {
      throw missing();
    }

    private IllegalStateException missing() {
      return new IllegalStateException(
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
