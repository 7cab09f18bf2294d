package org.rdzv.worker;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import org.rdzv.api.PrefixStore;
import org.rdzv.api.Store;
import org.rdzv.store.StoreProtocol;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreOptions;
import org.rdzv.store.TcpStoreServer;

/**
 * What an elastic agent ({@code rdzv run} or torchrun) tells a worker through its environment:
 * PyTorch's worker contract, read once into a value.
 *
 * <pre>{@code
 * WorkerContext ctx = WorkerContext.fromEnvironment();
 * try (Store store = ctx.connectStore(Duration.ofSeconds(60))) {
 *   store.add("arrived", 1);
 * }
 * }</pre>
 *
 * @param rank {@code RANK}, the worker's rank among all workers
 * @param localRank {@code LOCAL_RANK}, its position on its node
 * @param worldSize {@code WORLD_SIZE}
 * @param localWorldSize {@code LOCAL_WORLD_SIZE}
 * @param groupRank {@code GROUP_RANK}, its agent's rank
 * @param groupWorldSize {@code GROUP_WORLD_SIZE}, the number of agents
 * @param roleRank {@code ROLE_RANK}
 * @param roleWorldSize {@code ROLE_WORLD_SIZE}
 * @param roleName {@code ROLE_NAME}
 * @param masterAddr {@code MASTER_ADDR}, host of the workers' store
 * @param masterPort {@code MASTER_PORT}
 * @param restartCount {@code TORCHELASTIC_RESTART_COUNT}
 * @param maxRestarts {@code TORCHELASTIC_MAX_RESTARTS}
 * @param runId {@code TORCHELASTIC_RUN_ID}
 * @param useAgentStore {@code TORCHELASTIC_USE_AGENT_STORE}: the store already runs (in an agent)
 *     and every worker is its client; otherwise rank 0 hosts it
 * @param errorFile {@code TORCHELASTIC_ERROR_FILE}, or {@code null}
 */
public record WorkerContext(
    int rank,
    int localRank,
    int worldSize,
    int localWorldSize,
    int groupRank,
    int groupWorldSize,
    int roleRank,
    int roleWorldSize,
    String roleName,
    String masterAddr,
    int masterPort,
    int restartCount,
    int maxRestarts,
    String runId,
    boolean useAgentStore,
    Path errorFile) {

  public WorkerContext {
    Objects.requireNonNull(masterAddr, "masterAddr");
    if (worldSize < 1 || rank < 0 || rank >= worldSize) {
      throw new IllegalArgumentException("RANK " + rank + " is outside WORLD_SIZE " + worldSize);
    }
  }

  /**
   * Reads this process's environment.
   *
   * @throws IllegalStateException naming the first missing or malformed variable, e.g. when the
   *     program was not started by an elastic agent
   */
  public static WorkerContext fromEnvironment() {
    return from(System.getenv());
  }

  /**
   * Reads {@code env}. {@code RANK}, {@code WORLD_SIZE}, {@code MASTER_ADDR} and {@code
   * MASTER_PORT} are required (what {@code init_process_group("env://")} needs); the rest default
   * as for a single local worker.
   *
   * @throws IllegalStateException naming the first missing or malformed variable
   */
  public static WorkerContext from(Map<String, String> env) {
    int rank = required(env, "RANK");
    int worldSize = required(env, "WORLD_SIZE");
    String masterAddr = env.get("MASTER_ADDR");
    if (masterAddr == null || masterAddr.isBlank()) {
      throw new IllegalStateException(
          "MASTER_ADDR is not set: start this program with an elastic agent (rdzv run, torchrun)");
    }
    int masterPort = required(env, "MASTER_PORT");
    String errorFile = env.get("TORCHELASTIC_ERROR_FILE");
    try {
      return new WorkerContext(
          rank,
          optional(env, "LOCAL_RANK", rank),
          worldSize,
          optional(env, "LOCAL_WORLD_SIZE", worldSize),
          optional(env, "GROUP_RANK", 0),
          optional(env, "GROUP_WORLD_SIZE", 1),
          optional(env, "ROLE_RANK", rank),
          optional(env, "ROLE_WORLD_SIZE", worldSize),
          env.getOrDefault("ROLE_NAME", "default"),
          masterAddr,
          masterPort,
          optional(env, "TORCHELASTIC_RESTART_COUNT", 0),
          optional(env, "TORCHELASTIC_MAX_RESTARTS", 0),
          env.getOrDefault("TORCHELASTIC_RUN_ID", ""),
          "True".equals(env.get("TORCHELASTIC_USE_AGENT_STORE")),
          errorFile == null || errorFile.isBlank() ? null : Path.of(errorFile));
    } catch (IllegalArgumentException e) {
      throw new IllegalStateException(e.getMessage(), e);
    }
  }

  private static int required(Map<String, String> env, String name) {
    String value = env.get(name);
    if (value == null || value.isBlank()) {
      throw new IllegalStateException(
          name + " is not set: start this program with an elastic agent (rdzv run, torchrun)");
    }
    return parse(name, value);
  }

  private static int optional(Map<String, String> env, String name, int defaultValue) {
    String value = env.get(name);
    return value == null || value.isBlank() ? defaultValue : parse(name, value);
  }

  private static int parse(String name, String value) {
    try {
      return Integer.parseInt(value.strip());
    } catch (NumberFormatException e) {
      throw new IllegalStateException(name + " is not a number: '" + value + "'");
    }
  }

  /**
   * The store the workers of this attempt share, as PyTorch's {@code env://} rendezvous builds it:
   *
   * <ul>
   *   <li>with an agent store, a client of {@code MASTER_ADDR:MASTER_PORT} whose keys live under
   *       {@code /worker/attempt_<TORCHELASTIC_RESTART_COUNT>}, so PyTorch workers of the same job
   *       see the same keys;
   *   <li>otherwise rank 0 hosts a server on {@code MASTER_PORT} (closed with the returned store)
   *       and every rank is a client.
   * </ul>
   *
   * Each rank announces itself with {@code ADD init/ 1}, as a torch worker does. Blocking
   * operations on the returned store wait up to {@code timeout}.
   *
   * @throws org.rdzv.api.StoreException if the store cannot be reached (or, for rank 0, bound)
   *     within {@code timeout}
   */
  public Store connectStore(Duration timeout) {
    TcpStoreServer server = null;
    if (!useAgentStore && rank == 0) {
      server = TcpStoreServer.start("", masterPort);
    }
    TcpStore client;
    try {
      client =
          TcpStore.connect(
              TcpStoreOptions.builder(masterAddr, masterPort)
                  .timeout(timeout)
                  .protocol(StoreProtocol.AUTO)
                  .worldSize(worldSize)
                  .waitForWorkers(true)
                  .build());
    } catch (RuntimeException e) {
      if (server != null) {
        server.close();
      }
      throw e;
    }
    Store store =
        useAgentStore ? new PrefixStore("/worker/attempt_" + restartCount, client) : client;
    return new OwningStore(store, client, server);
  }

  /** Whether this is the first worker of the job ({@code RANK == 0}). */
  public boolean isFirst() {
    return rank == 0;
  }
}
