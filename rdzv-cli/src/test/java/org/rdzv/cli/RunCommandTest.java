package org.rdzv.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.EnumSource;
import org.rdzv.launcher.Devices;
import org.rdzv.launcher.LaunchConfig;
import org.rdzv.launcher.Std;
import org.rdzv.testing.Torch;
import picocli.CommandLine;

/** {@code rdzv run}: flags as torchrun spells them, the worker command, and whole runs. */
@Timeout(120)
class RunCommandTest {
  private static final Path ROOT = Path.of(System.getProperty("user.dir")).getParent();

  record Result(int exit, String out, String err) {}

  static Result rdzv(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int exit =
        Cli.run(
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8),
            args);
    return new Result(
        exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  static LaunchConfig config(String... args) {
    RunCommand run = new RunCommand();
    new CommandLine(run).parseArgs(args);
    return run.config();
  }

  @Test
  void bothSpellingsGiveTheSameLaunch() {
    LaunchConfig dashes =
        config(
            "--nproc-per-node",
            "2",
            "--max-restarts",
            "3",
            "--monitor-interval",
            "0.5",
            "--node-rank",
            "1",
            "--master-addr",
            "10.0.0.1",
            "--master-port",
            "1234",
            "--log-dir",
            "/tmp/l",
            "--no-python",
            "--role",
            "trainer",
            "--redirects",
            "1",
            "--tee",
            "0:2",
            "prog",
            "a");
    LaunchConfig underscores =
        config(
            "--nproc_per_node=2",
            "--max_restarts=3",
            "--monitor_interval=0.5",
            "--node_rank=1",
            "--master_addr=10.0.0.1",
            "--master_port=1234",
            "--log_dir=/tmp/l",
            "--no_python",
            "--role=trainer",
            "-r",
            "1",
            "-t",
            "0:2",
            "prog",
            "a");
    assertThat(underscores.toString()).isEqualTo(dashes.toString());
    assertThat(dashes.nprocPerNode()).isEqualTo(2);
    assertThat(dashes.maxRestarts()).isEqualTo(3);
    assertThat(dashes.monitorInterval()).hasMillis(500);
    assertThat(dashes.role()).isEqualTo("trainer");
    assertThat(dashes.redirects()).containsEntry(0, Std.OUT).containsEntry(1, Std.OUT);
    assertThat(dashes.tee()).containsEntry(0, Std.ERR).containsEntry(1, Std.NONE);
    assertThat(dashes.command()).containsExactly("prog", "a");
    // static (torchrun's default backend): the endpoint is master_addr:master_port, rank = node
    // rank
    assertThat(dashes.rendezvous().backend()).isEqualTo("static");
    assertThat(dashes.rendezvous().endpoint()).isEqualTo("10.0.0.1:1234");
    assertThat(dashes.rendezvous().config())
        .containsEntry("rank", 1)
        .containsEntry("timeout", "900");
    assertThat(dashes.rendezvous().runId()).isEqualTo("none");
  }

  @Test
  void teedLinesArePrefixedWithTheRankUnlessAnotherTemplateIsGiven() {
    if (System.getenv("TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE") == null) {
      assertThat(config("--no-python", "true").logLinePrefixTemplate()).isEqualTo("[rank${rank}]:");
    }
    assertThat(
            config(
                    "--log-line-prefix-template",
                    "${role_name}-${local_rank}|",
                    "--no-python",
                    "true")
                .logLinePrefixTemplate())
        .isEqualTo("${role_name}-${local_rank}|");
  }

  @Test
  void everythingAfterTheProgramBelongsToIt() {
    LaunchConfig c = config("--no-python", "echo", "--nnodes", "3", "--max-restarts=x", "-v");
    assertThat(c.command()).containsExactly("echo", "--nnodes", "3", "--max-restarts=x", "-v");
    assertThat(c.rendezvous().minNodes()).isEqualTo(1);
  }

  @Test
  void pythonProgramsRunUnderPythonUnbuffered() {
    assertThat(config("--python", "/opt/py", "train.py", "--lr", "1").command())
        .containsExactly("/opt/py", "-u", "train.py", "--lr", "1");
    assertThat(config("--python", "/opt/py", "-m", "pkg.train").command())
        .containsExactly("/opt/py", "-u", "-m", "pkg.train");
    assertThat(config("--python", "/opt/py", "train.py").entrypointName()).isEqualTo("train.py");
  }

  @Test
  void javaSourceProgramsRunOnThisJvmWithRdzvOnTheClassPath() {
    List<String> command = config("Worker.java", "x").command();
    assertThat(command.get(0)).isEqualTo(ProcessHandle.current().info().command().orElseThrow());
    assertThat(command.subList(1, command.size()))
        .containsExactly("-cp", System.getProperty("java.class.path"), "Worker.java", "x");
  }

  @Test
  void standaloneIsC10dOnAFreePortWithAFreshRunId() {
    LaunchConfig a = config("--standalone", "--no-python", "true");
    LaunchConfig b = config("--standalone", "--no-python", "true");
    assertThat(a.rendezvous().backend()).isEqualTo("c10d");
    assertThat(a.rendezvous().endpoint()).isEqualTo("localhost:0");
    assertThat(a.rendezvous().runId()).isNotEqualTo(b.rendezvous().runId());
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "--nproc-per-node 0 --no-python true|--nproc-per-node '0' must be a positive number, auto or cpu.",
        "--redirects 5 --no-python true|--redirects: 5 does not match",
        "--no-python -m x|Don't use both the '--no-python' flag and the '--module' flag at the same time.",
        "--monitor-interval 0 --no-python true|--monitor-interval must be positive",
        "--nnodes 2:1 --no-python true|--nnodes '2:1'",
        "--standalone|Missing required parameter: 'PROGRAM'",
        "--start-method thread --no-python true|--start-method: invalid choice: 'thread' (choose from 'spawn', 'fork', 'forkserver').",
        "--logs-specs mine --no-python true|--logs-specs: Could not find entrypoint under 'torchrun.logs_specs[mine]' key",
        "--local-ranks-filter 0,x --no-python true|--local-ranks-filter must be a comma-separated list of integers",
      })
  void badInputIsOneLineNamingTheProblem(String args, String expected) {
    Result r = rdzv(("run " + args).split(" "));
    assertThat(r.exit).as(r.err).isEqualTo(ExitCode.USAGE.code());
    assertThat(r.err.lines().findFirst().orElseThrow()).startsWith("rdzv run: ").contains(expected);
    assertThat(r.err).doesNotContain("\tat ");
  }

  static LaunchConfig config(Map<String, String> env, Devices devices, String... args) {
    RunCommand run = new RunCommand();
    new CommandLine(run).parseArgs(args);
    return run.config(env, devices);
  }

  @Test
  void nprocPerNodeCountsGpusAsTorchrunDoes() {
    Devices gpuNode = new Devices(96, 4);
    Devices cpuNode = new Devices(8, 0);
    assertThat(config(Map.of(), gpuNode, "--nproc-per-node", "auto", "x.py").nprocPerNode())
        .isEqualTo(4); // not 96
    assertThat(config(Map.of(), gpuNode, "--nproc-per-node", "gpu", "x.py").nprocPerNode())
        .isEqualTo(4);
    assertThat(config(Map.of(), gpuNode, "--nproc-per-node", "cpu", "x.py").nprocPerNode())
        .isEqualTo(96);
    assertThat(config(Map.of(), cpuNode, "--nproc-per-node", "auto", "x.py").nprocPerNode())
        .isEqualTo(8);
    assertThatThrownBy(() -> config(Map.of(), cpuNode, "--nproc-per-node", "gpu", "x.py"))
        .hasMessageStartingWith("--nproc-per-node gpu: Cuda is not available");
  }

  @ParameterizedTest(name = "{0}={1}")
  @CsvSource({"PET_STANDALONE,1,true", "PET_STANDALONE,0,false", "PET_STANDALONE,true,true"})
  void flagsTakeTheirEnvironmentFormAsZeroOrOne(String name, String value, boolean on) {
    LaunchConfig c = config(Map.of(name, value), new Devices(2, 0), "--no-python", "true");
    assertThat(c.rendezvous().backend()).isEqualTo(on ? "c10d" : "static");
  }

  @Test
  void everyBooleanFlagHasItsEnvironmentForm() {
    Devices d = new Devices(2, 0);
    assertThat(config(Map.of("PET_NO_PYTHON", "1"), d, "prog").command()).containsExactly("prog");
    assertThat(config(Map.of("PET_MODULE", "1"), d, "--python", "/py", "pkg").command())
        .containsExactly("/py", "-u", "-m", "pkg");
    assertThat(config(Map.of("PET_RUN_PATH", "1"), d, "--python", "/py", "/a/s.py").command())
        .containsExactly("/py", "-u", "-c", RunCommand.RUN_PATH, "/a/s.py");
    assertThatThrownBy(() -> config(Map.of("PET_NO_PYTHON", "yes"), d, "prog"))
        .hasMessage("PET_NO_PYTHON must be 0 or 1 (or true/false), not 'yes'.");
  }

  @Test
  void runPathRunsTheScriptWithRunpyAndTakesPrecedence() {
    LaunchConfig c =
        config("--run-path", "--no-python", "-m", "--python", "/py", "/abs/train.py", "--lr", "1");
    assertThat(c.command())
        .containsExactly("/py", "-u", "-c", RunCommand.RUN_PATH, "/abs/train.py", "--lr", "1");
    assertThat(c.entrypointName()).isEqualTo("/abs/train.py");
  }

  @Test
  void startMethodLocalRanksFilterAndLogsSpecsAreTorchruns() {
    LaunchConfig c =
        config(
            "--start_method=fork",
            "--local_ranks_filter=0,2",
            "--logs_specs=default",
            "--nproc-per-node=3",
            "--no-python",
            "true");
    assertThat(c.localRanksFilter()).containsExactly(0, 2);
    assertThat(config("--no-python", "true").localRanksFilter()).isEmpty();
  }

  @Test
  void aStandaloneRunOfTrueSucceeds() {
    Result r = rdzv("run", "--standalone", "--nproc-per-node", "2", "--no-python", "true");
    assertThat(r.exit).as(r.err).isZero();
  }

  @Test
  void theJavaWorkerExampleRunsAsASourceProgram() {
    Result r =
        rdzv(
            "run",
            "--standalone",
            "--nproc-per-node",
            "2",
            ROOT.resolve("examples/StoreSum.java").toString());
    assertThat(r.exit).as(r.err).isZero();
  }

  @Test
  void theDefaultStaticBackendRunsOneNodeOnMasterPort() {
    int port = org.rdzv.testing.FreePort.next();
    Result r =
        rdzv("run", "--master-port", "" + port, "--nproc_per_node", "2", "--no_python", "true");
    assertThat(r.exit).as(r.err).isZero();
  }

  @Test
  void aFailingWorkerGivesExitOneAndTorchrunsSummary() {
    Result r =
        rdzv(
            "run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "--no-python",
            "sh",
            "-c",
            "exit $((LOCAL_RANK + 3))");
    assertThat(r.exit).isEqualTo(ExitCode.FAILURE.code());
    assertThat(r.err)
        .contains("sh FAILED")
        .contains("Root Cause (first observed failure):")
        .containsPattern("exitcode  : [34] \\(pid: \\d+\\)")
        .contains("To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html");
  }

  @Test
  void anUnreachableRendezvousIsOneLineAndExitOne() {
    int port = org.rdzv.testing.FreePort.next();
    Result r =
        rdzv(
            "run",
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            "127.0.0.1:" + port,
            "--rdzv-conf",
            "is_host=false,read_timeout=1",
            "--no-python",
            "true");
    assertThat(r.exit).as(r.err).isEqualTo(ExitCode.FAILURE.code());
    assertThat(
            r.err.strip().lines().filter(l -> l.startsWith("rdzv run: ")).findFirst().orElseThrow())
        .contains("The connection to the C10d store has failed");
    assertThat(r.err).doesNotContain("\tat ");
  }

  /** The README's command, as a user runs it: a separate JVM, PyTorch workers, gloo all-reduce. */
  @ParameterizedTest
  @EnumSource(Torch.class)
  void theReadmeCommandRunsTheAllReduceExample(Torch torch, @TempDir Path dir)
      throws IOException, InterruptedException {
    torch.require();
    List<String> command =
        new ArrayList<>(
            List.of(
                ProcessHandle.current().info().command().orElseThrow(),
                "-cp",
                System.getProperty("java.class.path"),
                Main.class.getName(),
                "run",
                "--standalone",
                "--nproc-per-node",
                "2",
                "--python",
                PythonExecutable.of(torch, dir),
                "examples/allreduce.py"));
    Process p =
        new ProcessBuilder(command).directory(ROOT.toFile()).redirectErrorStream(true).start();
    List<String> lines = new ArrayList<>();
    try (BufferedReader in =
        new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
      for (String line; (line = in.readLine()) != null; ) {
        lines.add(line);
      }
    }
    assertThat(p.waitFor(100, TimeUnit.SECONDS)).isTrue();
    String output = String.join("\n", lines);
    assertThat(p.exitValue()).as(output).isZero();
    assertThat(output)
        .contains("rank 0/2 (local 0, node 0): all_reduce sum = 3, expected 3")
        .contains("rank 1/2 (local 1, node 0): all_reduce sum = 3, expected 3");
  }
}
