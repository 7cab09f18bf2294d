package org.rdzv.cli;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.rdzv.api.Endpoint;
import org.rdzv.api.RendezvousConfig;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import picocli.CommandLine.Option;

/**
 * The rendezvous flags shared by {@code run}, {@code join} and {@code status}, in both of
 * torchrun's spellings, with torchrun's {@code PET_*} environment forms.
 *
 * <p>{@link #toParameters(String)} validates everything that can be checked without contacting the
 * backend, so that a bad flag fails at once with a message naming it.
 */
public final class RendezvousOptions {
  /** Integer config keys that the built-in backends read; checked up front. */
  static final List<String> INT_KEYS =
      List.of(
          "join_timeout",
          "last_call_timeout",
          "close_timeout",
          "heartbeat_timeout",
          "keep_alive_interval",
          "keep_alive_max_attempt",
          "read_timeout",
          "timeout");

  /** Boolean config keys that the built-in backends read; checked up front. */
  static final List<String> BOOL_KEYS = List.of("is_host");

  @Option(
      names = {"--rdzv-backend", "--rdzv_backend"},
      paramLabel = "NAME",
      defaultValue = "${env:PET_RDZV_BACKEND}",
      description = "Rendezvous backend: c10d, static, etcd, etcd-v2, etcd-v3 or a plug-in.")
  String backend;

  @Option(
      names = {"--rdzv-endpoint", "--rdzv_endpoint"},
      paramLabel = "HOST[:PORT]",
      defaultValue = "${env:PET_RDZV_ENDPOINT}",
      description = "Rendezvous backend endpoint, usually host:port.")
  String endpoint;

  @Option(
      names = {"--rdzv-id", "--rdzv_id"},
      paramLabel = "ID",
      defaultValue = "${env:PET_RDZV_ID}",
      description = "Run id shared by all nodes of the job.")
  String runId;

  @Option(
      names = {"--nnodes"},
      paramLabel = "MIN[:MAX]",
      defaultValue = "${env:PET_NNODES:-1:1}",
      description = "Number of nodes, or the range MIN:MAX (default: ${DEFAULT-VALUE}).")
  String nnodes;

  @Option(
      names = {"--rdzv-conf", "--rdzv_conf"},
      paramLabel = "K=V,...",
      defaultValue = "${env:PET_RDZV_CONF}",
      description = "Backend options, e.g. join_timeout=600,last_call_timeout=30.")
  String conf;

  @Option(
      names = {"--local-addr", "--local_addr"},
      paramLabel = "ADDR",
      defaultValue = "${env:PET_LOCAL_ADDR}",
      description = "This node's address as other nodes should see it.")
  String localAddr;

  /** The backend name given, or {@code defaultBackend}. */
  public String backendOr(String defaultBackend) {
    return backend == null || backend.isBlank() ? defaultBackend : backend.strip();
  }

  /** Parses {@code --nnodes}: {@code N} or {@code MIN:MAX}, as torchrun's parse_min_max_nnodes. */
  public static int[] parseNnodes(String nnodes) {
    String text = nnodes == null ? "" : nnodes.strip();
    String[] parts = text.split(":", -1);
    try {
      if (parts.length == 1) {
        int n = Integer.parseInt(parts[0].strip());
        return checkRange(n, n, text);
      }
      if (parts.length == 2) {
        return checkRange(
            Integer.parseInt(parts[0].strip()), Integer.parseInt(parts[1].strip()), text);
      }
    } catch (NumberFormatException e) {
      // fall through
    }
    throw new IllegalArgumentException(
        "--nnodes '" + text + "' must be a number of nodes N or a range MIN:MAX.");
  }

  private static int[] checkRange(int min, int max, String text) {
    if (min < 1) {
      throw new IllegalArgumentException(
          "--nnodes '" + text + "': the minimum number of nodes must be at least 1.");
    }
    if (max < min) {
      throw new IllegalArgumentException(
          "--nnodes '"
              + text
              + "': the maximum number of nodes ("
              + max
              + ") must be at least the minimum ("
              + min
              + ").");
    }
    return new int[] {min, max};
  }

  /** The default port of a built-in backend's endpoint, or -1 where there is none. */
  static int defaultPort(String backend) {
    return switch (backend) {
      case "c10d" -> Endpoint.C10D_DEFAULT_PORT;
      case "etcd", "etcd-v2", "etcd-v3" -> Endpoint.ETCD_DEFAULT_PORT;
      default -> -1;
    };
  }

  /**
   * Validated parameters: a registered backend, a parsable endpoint (each of a comma-separated
   * list, for etcd clusters), a sane {@code --nnodes}, a parsable {@code --rdzv-conf} whose known
   * typed keys hold values of their type.
   *
   * @param defaultBackend the backend when {@code --rdzv-backend} is absent
   * @param defaultRunId the run id when {@code --rdzv-id} is absent
   * @param extraConfig entries added before {@code --rdzv-conf} (which wins)
   * @throws IllegalArgumentException naming the flag or option that is wrong
   */
  public RendezvousParameters toParameters(
      String defaultBackend, String defaultRunId, Map<String, Object> extraConfig) {
    String name = backendOr(defaultBackend);
    RendezvousRegistry registry = RendezvousRegistry.defaultRegistry();
    if (!registry.isRegistered(name)) {
      throw new IllegalArgumentException(
          "--rdzv-backend: the rendezvous backend '"
              + name
              + "' is not registered (available: "
              + String.join(", ", registry.names())
              + ").");
    }
    Map<String, Object> config = new LinkedHashMap<>(extraConfig);
    config.putAll(flag("--rdzv-conf", () -> RendezvousConfig.parse(conf)));
    String endpointText = endpoint == null ? "" : endpoint.strip();
    boolean fileStore = "file".equalsIgnoreCase(String.valueOf(config.get("store_type")).strip());
    if (!endpointText.isEmpty() && !fileStore) {
      for (String one : endpointText.split(",")) {
        flag("--rdzv-endpoint", () -> Endpoint.parse(one, Math.max(defaultPort(name), 0)));
      }
    }
    int[] range = parseNnodes(nnodes);
    RendezvousParameters parameters =
        new RendezvousParameters(
            name,
            endpointText,
            runId == null || runId.isBlank() ? defaultRunId : runId.strip(),
            range[0],
            range[1],
            localAddr == null || localAddr.isBlank() ? null : localAddr.strip(),
            config);
    for (String key : INT_KEYS) {
      flag("--rdzv-conf", () -> parameters.getAsInt(key));
    }
    for (String key : BOOL_KEYS) {
      flag("--rdzv-conf", () -> parameters.getAsBool(key));
    }
    return parameters;
  }

  /** Runs {@code check}, prefixing the flag's name to the message of what it throws. */
  static <T> T flag(String name, java.util.function.Supplier<T> check) {
    try {
      return check.get();
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(name + ": " + e.getMessage(), e);
    }
  }

  public RendezvousParameters toParameters(String defaultBackend, String defaultRunId) {
    return toParameters(defaultBackend, defaultRunId, Map.of());
  }
}
