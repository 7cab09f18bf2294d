package org.rdzv.cli;

import java.io.PrintWriter;
import java.math.BigInteger;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.Callable;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.launcher.Devices;
import org.rdzv.launcher.FailureSummary;
import org.rdzv.launcher.LaunchConfig;
import org.rdzv.launcher.Launcher;
import org.rdzv.launcher.LocalWorldSize;
import org.rdzv.launcher.RunResult;
import org.rdzv.launcher.Std;
import org.rdzv.launcher.WorkerState;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code rdzv run}: torchrun. Joins the rendezvous, starts {@code --nproc-per-node} workers with
 * PyTorch's environment contract, restarts them on failure or when nodes join, and prints
 * torchrun's failure summary. Every flag of torchrun 2.6 is here, in both spellings ({@code
 * --nproc-per-node}, {@code --nproc_per_node}) and with its {@code PET_*} environment form (a
 * boolean flag's as torchrun reads it: {@code 0} or {@code 1}). Everything after the program
 * belongs to the program.
 */
@Command(
    name = "run",
    mixinStandardHelpOptions = true,
    modelTransformer = RunCommand.ProgramArguments.class,
    description = {
      "Launch workers under an elastic agent (torchrun-compatible).",
      "A .py program runs under Python (--python); a .java program runs on this JVM",
      "with rdzv's worker API on the class path; --no-python runs it as given."
    })
public final class RunCommand implements Callable<Integer> {

  @Mixin RendezvousOptions rendezvous;

  @Spec CommandSpec spec;

  @Option(
      names = {"--nproc-per-node", "--nproc_per_node"},
      paramLabel = "N",
      defaultValue = "${env:PET_NPROC_PER_NODE:-1}",
      description =
          "Workers per node: a number, cpu (one per CPU), gpu (one per GPU) or auto (one per GPU"
              + " if any, else per CPU) (default: ${DEFAULT-VALUE}).")
  String nprocPerNode;

  @Option(
      names = {"--node-rank", "--node_rank"},
      paramLabel = "RANK",
      defaultValue = "${env:PET_NODE_RANK:-0}",
      description = "This node's rank, for the static backend (default: ${DEFAULT-VALUE}).")
  int nodeRank;

  @Option(
      names = {"--standalone"},
      description =
          "One node: c10d rendezvous on a store this launcher hosts on a free port, fresh run id"
              + " (or PET_STANDALONE=1).")
  boolean standalone;

  @Option(
      names = {"--max-restarts", "--max_restarts"},
      paramLabel = "N",
      defaultValue = "${env:PET_MAX_RESTARTS:-0}",
      description = "Worker group restarts allowed after failures (default: ${DEFAULT-VALUE}).")
  int maxRestarts;

  @Option(
      names = {"--monitor-interval", "--monitor_interval"},
      paramLabel = "SECONDS",
      defaultValue = "${env:PET_MONITOR_INTERVAL:-0.1}",
      description =
          "How often to ask whether nodes wait to join; worker exits are seen at once (default: ${DEFAULT-VALUE}).")
  double monitorInterval;

  @Option(
      names = {"--role"},
      paramLabel = "ROLE",
      defaultValue = "${env:PET_ROLE:-default}",
      description = "Worker role name (default: ${DEFAULT-VALUE}).")
  String role;

  @Option(
      names = {"--master-addr", "--master_addr"},
      paramLabel = "ADDR",
      defaultValue = "${env:PET_MASTER_ADDR:-127.0.0.1}",
      description = "Static backend: address of node 0 (default: ${DEFAULT-VALUE}).")
  String masterAddr;

  @Option(
      names = {"--master-port", "--master_port"},
      paramLabel = "PORT",
      defaultValue = "${env:PET_MASTER_PORT:-29500}",
      description = "Static backend: port of node 0's store (default: ${DEFAULT-VALUE}).")
  int masterPort;

  @Option(
      names = {"-r", "--redirects"},
      paramLabel = "STD",
      defaultValue = "${env:PET_REDIRECTS:-0}",
      description =
          "Send worker streams to log files only: 0 none, 1 out, 2 err, 3 both, or per local rank 0:3,1:0.")
  String redirects;

  @Option(
      names = {"-t", "--tee"},
      paramLabel = "STD",
      defaultValue = "${env:PET_TEE:-0}",
      description =
          "Copy worker streams to log files and the console, lines prefixed [rankN]: (codes as --redirects).")
  String tee;

  @Option(
      names = {"--log-dir", "--log_dir"},
      paramLabel = "DIR",
      defaultValue = "${env:PET_LOG_DIR}",
      description =
          "Keep per-attempt, per-rank logs and error files under DIR/<run id>_<random>/attempt_<n>/<local rank>/.")
  Path logDir;

  @Option(
      names = {"--log-line-prefix-template", "--log_line_prefix_template"},
      paramLabel = "TEMPLATE",
      description =
          "Prefix of tee'd lines; $${rank}, $${local_rank}, $${role_name} are replaced (default: $$TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE, else [rank$${rank}]:).")
  String logLinePrefixTemplate;

  @Option(
      names = {"--no-python", "--no_python"},
      description = "Run the program as given, not under Python (or PET_NO_PYTHON=1).")
  boolean noPython;

  @Option(
      names = {"-m", "--module"},
      description = "The program is a Python module name (python -m) (or PET_MODULE=1).")
  boolean module;

  @Option(
      names = {"--run-path", "--run_path"},
      description =
          "Run the script with runpy.run_path in the worker's interpreter (or PET_RUN_PATH=1);"
              + " takes precedence over --no-python and --module.")
  boolean runPath;

  @Option(
      names = {"--local-ranks-filter", "--local_ranks_filter"},
      paramLabel = "RANKS",
      defaultValue = "${env:PET_LOCAL_RANKS_FILTER:-}",
      description =
          "Only these local ranks (e.g. 0,1) write to the console; log files are kept for all.")
  String localRanksFilter;

  @Option(
      names = {"--logs-specs", "--logs_specs"},
      paramLabel = "NAME",
      description =
          "torchrun's LogsSpecs plug-in name; only 'default' (the per-attempt, per-rank layout"
              + " of --log-dir) exists here.")
  String logsSpecs;

  @Option(
      names = {"--python"},
      paramLabel = "PATH",
      defaultValue = "${env:PYTHON}",
      description =
          "Python interpreter for .py programs (default: /usr/bin/python3 if present, else python3 on PATH).")
  String python;

  @Option(
      names = {"--start-method", "--start_method"},
      paramLabel = "METHOD",
      defaultValue = "${env:PET_START_METHOD:-spawn}",
      description =
          "spawn, fork or forkserver, checked as torchrun does; workers are always new processes"
              + " (torchrun's own rule for a program), so it changes nothing.")
  String startMethod;

  @Option(
      names = {"--stop-timeout"},
      paramLabel = "SECONDS",
      defaultValue = "30",
      description =
          "Grace between SIGTERM and SIGKILL when workers are stopped (default: ${DEFAULT-VALUE}).")
  double stopTimeout;

  @Option(
      names = {"--no-agent-store"},
      description =
          "Do not host the workers' store in the agent; worker rank 0 hosts it (PyTorch 1.13's way).")
  boolean noAgentStore;

  @Parameters(
      index = "0",
      paramLabel = "PROGRAM",
      description =
          "The worker program (a .py script, a .java source file, or with --no-python any executable).")
  String program;

  @Parameters(index = "1..*", paramLabel = "ARG", description = "The program's arguments.")
  List<String> programArgs = new ArrayList<>();

  /** Stops option parsing at the program, so its own flags reach it untouched. */
  static final class ProgramArguments implements CommandLine.IModelTransformer {
    @Override
    public CommandSpec transform(CommandSpec commandSpec) {
      commandSpec.parser().stopAtPositional(true);
      return commandSpec;
    }
  }

  @Override
  public Integer call() {
    LaunchConfig config = config();
    RunResult result = Launcher.launch(config, null);
    PrintWriter err = spec.commandLine().getErr();
    if (result.isSuccess()) {
      return ExitCode.OK.code();
    }
    if (result.state() == WorkerState.STOPPED) {
      return ExitCode.INTERRUPTED.code();
    }
    err.println(
        FailureSummary.format(
            config.entrypointName(),
            result.failures(),
            RendezvousStoreInfo.fqdn(),
            ZoneId.systemDefault()));
    err.flush();
    return ExitCode.FAILURE.code();
  }

  /** The launch configuration this command line asks for (validated). */
  LaunchConfig config() {
    return config(System.getenv(), Devices.detect());
  }

  /** The configuration for a node with {@code devices}, reading {@code PET_*} from {@code env}. */
  LaunchConfig config(Map<String, String> env, Devices devices) {
    standalone = standalone || petFlag(env, "PET_STANDALONE");
    noPython = noPython || petFlag(env, "PET_NO_PYTHON");
    module = module || petFlag(env, "PET_MODULE");
    runPath = runPath || petFlag(env, "PET_RUN_PATH");
    if (!START_METHODS.contains(startMethod)) {
      throw new IllegalArgumentException(
          "--start-method: invalid choice: '"
              + startMethod
              + "' (choose from 'spawn', 'fork', 'forkserver').");
    }
    if (logsSpecs != null && !logsSpecs.equals("default")) {
      throw new IllegalArgumentException(
          "--logs-specs: Could not find entrypoint under 'torchrun.logs_specs["
              + logsSpecs
              + "]' key (rdzv run has only 'default'; LogsSpecs plug-ins are Python entry points).");
    }
    if (!runPath && noPython && module) {
      throw new IllegalArgumentException(
          "Don't use both the '--no-python' flag and the '--module' flag at the same time.");
    }
    int nproc = LocalWorldSize.determine(nprocPerNode, devices);
    Set<Integer> shown = localRanks(localRanksFilter);
    if (standalone) {
      // PyTorch 2.x: a c10d store on a free port of this host, and a fresh run id.
      rendezvous.backend = "c10d";
      rendezvous.endpoint = "localhost:0";
      rendezvous.runId = UUID.randomUUID().toString();
    }
    String backend = rendezvous.backendOr("static");
    Map<String, Object> extra = new LinkedHashMap<>();
    extra.put("timeout", Integer.toString(Launcher.DEFAULT_RDZV_TIMEOUT_SECONDS));
    if ("static".equals(backend)) {
      extra.put("rank", nodeRank);
      if (rendezvous.endpoint == null || rendezvous.endpoint.isBlank()) {
        rendezvous.endpoint = masterAddr + ":" + masterPort;
      }
    }
    RendezvousParameters parameters =
        Launcher.withDefaults(rendezvous.toParameters("static", "none", extra));
    List<String> command = new ArrayList<>();
    String entrypointName;
    if (runPath) {
      // torchrun runs runpy.run_path in a multiprocessing child of its own interpreter; here the
      // child is a fresh interpreter doing the same.
      command.add(pythonInterpreter());
      command.add("-u");
      command.add("-c");
      command.add(RUN_PATH);
      command.add(program);
      entrypointName = program;
    } else if (noPython) {
      command.add(program);
      entrypointName = program;
    } else if (!module && program.endsWith(".java")) {
      command.add(ProcessHandle.current().info().command().orElse("java"));
      command.add("-cp");
      command.add(System.getProperty("java.class.path"));
      command.add(program);
      entrypointName = program;
    } else {
      command.add(pythonInterpreter());
      command.add("-u");
      if (module) {
        command.add("-m");
      }
      command.add(program);
      entrypointName = program;
    }
    command.addAll(programArgs);
    if (monitorInterval <= 0) {
      throw new IllegalArgumentException(
          "--monitor-interval must be positive, not " + monitorInterval + ".");
    }
    if (stopTimeout < 0) {
      throw new IllegalArgumentException(
          "--stop-timeout must not be negative, not " + stopTimeout + ".");
    }
    return LaunchConfig.builder(parameters, command)
        .nprocPerNode(nproc)
        .role(role)
        .entrypointName(entrypointName)
        .maxRestarts(maxRestarts)
        .monitorInterval(seconds(monitorInterval))
        .stopTimeout(seconds(stopTimeout))
        .redirects(std("--redirects", redirects, nproc))
        .tee(std("--tee", tee, nproc))
        .localRanksFilter(shown)
        .logDir(logDir)
        .logLinePrefixTemplate(prefixTemplate())
        .agentStore(!noAgentStore)
        .build();
  }

  /**
   * The flag, else PyTorch 2.x's environment variable, else rdzv's default. Read here, not by
   * picocli, which would expand the template's own {@code ${...}}.
   */
  private String prefixTemplate() {
    if (logLinePrefixTemplate != null) {
      return logLinePrefixTemplate;
    }
    String env = System.getenv("TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE");
    return env != null && !env.isEmpty() ? env : LaunchConfig.DEFAULT_LOG_LINE_PREFIX;
  }

  private String pythonInterpreter() {
    if (python != null && !python.isBlank()) {
      return python.strip();
    }
    // The system interpreter is where distribution packages (python3-torch) live; a python3 that
    // comes first on PATH (pyenv, a venv) often does not see them.
    return Files.isExecutable(Path.of("/usr/bin/python3")) ? "/usr/bin/python3" : "python3";
  }

  static final List<String> START_METHODS = List.of("spawn", "fork", "forkserver");

  /** What {@code --run-path} runs: the script as {@code __main__}, with its arguments. */
  static final String RUN_PATH =
      "import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')";

  /**
   * A torchrun flag's environment form ({@code check_env}): a number, nonzero meaning on, as
   * torchrun reads it ({@code bool(int(value))}); rdzv also takes {@code true}/{@code false}, where
   * torchrun fails with a traceback.
   */
  static boolean petFlag(Map<String, String> env, String name) {
    String value = env.get(name);
    if (value == null) {
      return false;
    }
    String text = value.strip();
    if (text.equalsIgnoreCase("true")) {
      return true;
    }
    if (text.equalsIgnoreCase("false")) {
      return false;
    }
    try {
      return new BigInteger(text).signum() != 0;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          name + " must be 0 or 1 (or true/false), not '" + value + "'.", e);
    }
  }

  /** {@code --local-ranks-filter}: empty for all, else comma-separated local ranks. */
  static Set<Integer> localRanks(String text) {
    if (text == null || text.isEmpty()) {
      return Set.of();
    }
    Set<Integer> ranks = new TreeSet<>();
    try {
      for (String item : text.split(",", -1)) {
        ranks.add(Integer.parseInt(item.strip()));
      }
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "--local-ranks-filter must be a comma-separated list of integers e.g."
              + " --local-ranks-filter=0,1,2",
          e);
    }
    return ranks;
  }

  private static Map<Integer, Std> std(String flag, String value, int nproc) {
    try {
      return Std.parse(value, nproc);
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException(flag + ": " + e.getMessage(), e);
    }
  }

  private static Duration seconds(double s) {
    return Duration.ofNanos(Math.round(s * 1e9));
  }
}
