package org.rdzv.cli;

import java.io.OutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import org.rdzv.bench.store.StoreBench;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code rdzv bench store}: our TCPStore server against PyTorch 1.13's in the same run (throughput
 * and latency with the same client processes), single-client latency against the loopback round
 * trip, and a connection storm. Prints figures and ratios.
 */
@Command(
    name = "store",
    mixinStandardHelpOptions = true,
    description = {
      "Store throughput, latency and connection storm, against PyTorch's server.",
      "Every participant runs in its own process: rdzv's server, PyTorch 1.13's server, one JVM per",
      "load client (rdzv's Java client speaking the 1.13 protocol), one JVM for the storm clients;",
      "then PyTorch 2.6's server against ours, both loaded by PyTorch 2.6's own clients (one Python",
      "process each) where the 2.6 peer is installed."
    })
public final class BenchStoreCommand implements Callable<Integer> {

  @Spec CommandSpec spec;

  @Option(
      names = "--clients",
      split = ",",
      paramLabel = "P",
      defaultValue = "1,4,16",
      description = "Client-process counts of the throughput runs (default: ${DEFAULT-VALUE}).")
  List<Integer> clients;

  @Option(
      names = "--duration",
      paramLabel = "SECONDS",
      defaultValue = "3",
      description = "Measured seconds per throughput run (default: ${DEFAULT-VALUE}).")
  double duration;

  @Option(
      names = "--storm",
      paramLabel = "C",
      defaultValue = "10000",
      description = "Clients of the connection storm; 0 skips it (default: ${DEFAULT-VALUE}).")
  int storm;

  @Option(
      names = "--latency-iterations",
      paramLabel = "N",
      defaultValue = "20000",
      description = "Round trips of the single-client latency run (default: ${DEFAULT-VALUE}).")
  int latencyIterations;

  @Option(names = "--no-pytorch", description = "Do not start PyTorch's server (no comparison).")
  boolean noPytorch;

  @Option(
      names = "--python",
      paramLabel = "PATH",
      defaultValue = "/usr/bin/python3",
      description = "Interpreter that imports PyTorch 1.13 (default: ${DEFAULT-VALUE}).")
  String python;

  @Option(
      names = "--torch2-root",
      paramLabel = "DIR",
      defaultValue = "${env:RDZV_TEST_TORCH2:-/opt/torch2-peer}",
      description =
          "Root of the PyTorch 2.6 peer (.ci/torch2-peer.sh): its server and its clients are"
              + " compared too; skipped where missing (default: ${DEFAULT-VALUE}).")
  String torch2Root;

  @Option(
      names = "--jvm-option",
      paramLabel = "OPT",
      description = "Extra option for the child JVMs (repeatable).")
  List<String> jvmOptions = List.of();

  /** {@code [DIR/enter, python3]}, or empty (with a note) where the 2.6 peer is missing. */
  private List<String> torch2Command() {
    if (noPytorch || torch2Root == null || torch2Root.isBlank()) {
      return List.of();
    }
    java.nio.file.Path enter = java.nio.file.Path.of(torch2Root, "enter");
    if (!java.nio.file.Files.isExecutable(enter)) {
      spec.commandLine()
          .getOut()
          .println(
              "PyTorch 2.6 comparison skipped: no peer at " + torch2Root + " (.ci/torch2-peer.sh)");
      return List.of();
    }
    return List.of(enter.toString(), "python3");
  }

  @Override
  public Integer call() {
    if (duration <= 0) {
      throw new IllegalArgumentException("--duration must be positive, got " + duration);
    }
    StoreBench.Options options =
        new StoreBench.Options(
            clients,
            Duration.ofMillis(Math.round(duration * 1000)),
            storm,
            latencyIterations,
            !noPytorch,
            python,
            jvmOptions,
            torch2Command());
    PrintWriter writer = spec.commandLine().getOut();
    PrintStream out =
        new PrintStream(
            new OutputStream() {
              @Override
              public void write(int b) {
                writer.write(b);
              }

              @Override
              public void write(byte[] b, int off, int len) {
                writer.write(new String(b, off, len, StandardCharsets.UTF_8));
              }

              @Override
              public void flush() {
                writer.flush();
              }
            },
            true,
            StandardCharsets.UTF_8);
    int code = StoreBench.run(out, options);
    out.flush();
    return code == 0 ? ExitCode.OK.code() : ExitCode.FAILURE.code();
  }
}
