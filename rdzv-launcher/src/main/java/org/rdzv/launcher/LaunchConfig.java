package org.rdzv.launcher;

import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import org.rdzv.api.RendezvousParameters;

/**
 * Everything one elastic agent needs: PyTorch's {@code LaunchConfig} plus the worker command.
 * Immutable; build one with {@link #builder(RendezvousParameters, List)}, where every default
 * lives.
 *
 * @param rendezvous how to find the other agents; its {@code minNodes}/{@code maxNodes} are {@code
 *     --nnodes}
 * @param nprocPerNode local workers per agent ({@code --nproc-per-node}), at least 1
 * @param role worker role name ({@code --role}, default {@code default})
 * @param command the worker program and its arguments, already resolved (an interpreter first where
 *     one is needed); {@code ${local_rank}} in an argument is replaced per worker, as in PyTorch
 * @param entrypointName how failures name the program (PyTorch: the script, else the program)
 * @param maxRestarts worker-group restarts allowed after failures ({@code --max-restarts}, default
 *     0); membership changes do not count
 * @param monitorInterval how often the agent asks the rendezvous whether nodes wait to join ({@code
 *     --monitor-interval}, default 0.1 s as in PyTorch 2.x). Worker exits are seen at once,
 *     whatever this is.
 * @param stopTimeout grace between SIGTERM and SIGKILL when workers are stopped (default 30 s, as
 *     PyTorch's {@code PContext.close})
 * @param exitBarrierTimeout how long an agent whose workers ended waits for the other agents
 *     (default 300 s)
 * @param redirects per local rank, which streams go to log files only ({@code --redirects})
 * @param tee per local rank, which streams go to log files and the console ({@code --tee})
 * @param localRanksFilter the local ranks whose output reaches the console ({@code
 *     --local-ranks-filter}); empty for all. Others still write their log files.
 * @param logDir base directory of per-attempt, per-rank logs and error files ({@code --log-dir}),
 *     or {@code null} for a temporary directory removed after a successful run
 * @param logLinePrefixTemplate prefix of tee'd lines; {@code ${rank}}, {@code ${local_rank}} and
 *     {@code ${role_name}} are replaced (default {@code [rank${rank}]:})
 * @param environment variables added to every worker's environment (over the agent's own)
 * @param agentStore whether agent 0 may host the store that workers use (see {@code
 *     docs/launcher.md}); ignored by the {@code static} backend, whose store always serves workers
 * @param out where worker stdout goes when it is not redirected, or {@code null} to let workers
 *     write to this process's stdout directly
 * @param err the same for stderr
 */
public record LaunchConfig(
    RendezvousParameters rendezvous,
    int nprocPerNode,
    String role,
    List<String> command,
    String entrypointName,
    int maxRestarts,
    Duration monitorInterval,
    Duration stopTimeout,
    Duration exitBarrierTimeout,
    Map<Integer, Std> redirects,
    Map<Integer, Std> tee,
    Set<Integer> localRanksFilter,
    Path logDir,
    String logLinePrefixTemplate,
    Map<String, String> environment,
    boolean agentStore,
    PrintStream out,
    PrintStream err) {

  public static final String DEFAULT_ROLE = "default";
  public static final String DEFAULT_LOG_LINE_PREFIX = "[rank${rank}]:";

  public LaunchConfig {
    Objects.requireNonNull(rendezvous, "rendezvous");
    if (nprocPerNode < 1) {
      throw new IllegalArgumentException(
          "--nproc-per-node must be at least 1, not " + nprocPerNode + ".");
    }
    if (role == null || role.isBlank()) {
      throw new IllegalArgumentException("--role must not be empty.");
    }
    if (command == null || command.isEmpty() || command.get(0).isBlank()) {
      throw new IllegalArgumentException("no worker program given.");
    }
    command = List.copyOf(command);
    entrypointName = entrypointName == null ? command.get(0) : entrypointName;
    if (maxRestarts < 0) {
      throw new IllegalArgumentException(
          "--max-restarts must not be negative, not " + maxRestarts + ".");
    }
    requirePositive(monitorInterval, "--monitor-interval");
    requireNonNegative(stopTimeout, "the stop timeout");
    requireNonNegative(exitBarrierTimeout, "the exit barrier timeout");
    redirects = perRank(redirects, nprocPerNode);
    tee = perRank(tee, nprocPerNode);
    localRanksFilter =
        Collections.unmodifiableSet(
            new TreeSet<>(localRanksFilter == null ? Set.of() : localRanksFilter));
    logLinePrefixTemplate =
        logLinePrefixTemplate == null ? DEFAULT_LOG_LINE_PREFIX : logLinePrefixTemplate;
    environment =
        Collections.unmodifiableMap(
            new LinkedHashMap<>(environment == null ? Map.of() : environment));
  }

  private static void requirePositive(Duration d, String what) {
    if (d == null || d.isNegative() || d.isZero()) {
      throw new IllegalArgumentException(what + " must be positive, not " + d + ".");
    }
  }

  private static void requireNonNegative(Duration d, String what) {
    if (d == null || d.isNegative()) {
      throw new IllegalArgumentException(what + " must not be negative, not " + d + ".");
    }
  }

  private static Map<Integer, Std> perRank(Map<Integer, Std> given, int nproc) {
    Map<Integer, Std> result = new LinkedHashMap<>();
    for (int i = 0; i < nproc; i++) {
      result.put(i, given == null ? Std.NONE : given.getOrDefault(i, Std.NONE));
    }
    return Collections.unmodifiableMap(result);
  }

  /** A builder with PyTorch's defaults for everything but the rendezvous and the command. */
  public static Builder builder(RendezvousParameters rendezvous, List<String> command) {
    return new Builder(rendezvous, command);
  }

  /** A builder holding this configuration's values. */
  public Builder toBuilder() {
    Builder b = new Builder(rendezvous, command);
    b.nprocPerNode = nprocPerNode;
    b.role = role;
    b.entrypointName = entrypointName;
    b.maxRestarts = maxRestarts;
    b.monitorInterval = monitorInterval;
    b.stopTimeout = stopTimeout;
    b.exitBarrierTimeout = exitBarrierTimeout;
    b.redirects = redirects;
    b.tee = tee;
    b.localRanksFilter = localRanksFilter;
    b.logDir = logDir;
    b.logLinePrefixTemplate = logLinePrefixTemplate;
    b.environment = new LinkedHashMap<>(environment);
    b.agentStore = agentStore;
    b.out = out;
    b.err = err;
    return b;
  }

  /** Mutable builder of {@link LaunchConfig}; not thread-safe. */
  public static final class Builder {
    private RendezvousParameters rendezvous;
    private List<String> command;
    private int nprocPerNode = 1;
    private String role = DEFAULT_ROLE;
    private String entrypointName;
    private int maxRestarts = 0;
    private Duration monitorInterval = Duration.ofMillis(100);
    private Duration stopTimeout = Duration.ofSeconds(30);
    private Duration exitBarrierTimeout = Duration.ofSeconds(300);
    private Map<Integer, Std> redirects;
    private Std redirectsAll = Std.NONE;
    private Map<Integer, Std> tee;
    private Std teeAll = Std.NONE;
    private Set<Integer> localRanksFilter = Set.of();
    private Path logDir;
    private String logLinePrefixTemplate = DEFAULT_LOG_LINE_PREFIX;
    private Map<String, String> environment = new LinkedHashMap<>();
    private boolean agentStore = true;
    private PrintStream out;
    private PrintStream err;

    private Builder(RendezvousParameters rendezvous, List<String> command) {
      this.rendezvous = rendezvous;
      this.command = new ArrayList<>(command);
    }

    public Builder rendezvous(RendezvousParameters value) {
      rendezvous = value;
      return this;
    }

    public Builder command(List<String> value) {
      command = new ArrayList<>(value);
      return this;
    }

    public Builder nprocPerNode(int value) {
      nprocPerNode = value;
      return this;
    }

    public Builder role(String value) {
      role = value;
      return this;
    }

    public Builder entrypointName(String value) {
      entrypointName = value;
      return this;
    }

    public Builder maxRestarts(int value) {
      maxRestarts = value;
      return this;
    }

    public Builder monitorInterval(Duration value) {
      monitorInterval = value;
      return this;
    }

    public Builder stopTimeout(Duration value) {
      stopTimeout = value;
      return this;
    }

    public Builder exitBarrierTimeout(Duration value) {
      exitBarrierTimeout = value;
      return this;
    }

    /** The same flag for every local rank. */
    public Builder redirects(Std value) {
      redirects = null;
      redirectsAll = value;
      return this;
    }

    public Builder redirects(Map<Integer, Std> value) {
      redirects = value;
      return this;
    }

    /** The same flag for every local rank. */
    public Builder tee(Std value) {
      tee = null;
      teeAll = value;
      return this;
    }

    public Builder tee(Map<Integer, Std> value) {
      tee = value;
      return this;
    }

    /** The local ranks whose output reaches the console; empty (the default) for all. */
    public Builder localRanksFilter(Set<Integer> value) {
      localRanksFilter = value;
      return this;
    }

    public Builder logDir(Path value) {
      logDir = value;
      return this;
    }

    public Builder logLinePrefixTemplate(String value) {
      logLinePrefixTemplate = value;
      return this;
    }

    public Builder environment(Map<String, String> value) {
      environment = new LinkedHashMap<>(value);
      return this;
    }

    public Builder putEnvironment(String key, String value) {
      environment.put(key, value);
      return this;
    }

    public Builder agentStore(boolean value) {
      agentStore = value;
      return this;
    }

    public Builder out(PrintStream value) {
      out = value;
      return this;
    }

    public Builder err(PrintStream value) {
      err = value;
      return this;
    }

    private Map<Integer, Std> all(Std std) {
      Map<Integer, Std> map = new LinkedHashMap<>();
      for (int i = 0; i < nprocPerNode; i++) {
        map.put(i, std);
      }
      return map;
    }

    /**
     * @throws IllegalArgumentException naming the setting that is wrong
     */
    public LaunchConfig build() {
      return new LaunchConfig(
          rendezvous,
          nprocPerNode,
          role,
          command,
          entrypointName,
          maxRestarts,
          monitorInterval,
          stopTimeout,
          exitBarrierTimeout,
          redirects != null ? redirects : all(redirectsAll),
          tee != null ? tee : all(teeAll),
          localRanksFilter,
          logDir,
          logLinePrefixTemplate,
          environment,
          agentStore,
          out,
          err);
    }
  }
}
