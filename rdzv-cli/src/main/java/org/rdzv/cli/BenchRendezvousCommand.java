package org.rdzv.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import org.rdzv.api.RendezvousConfig;
import org.rdzv.bench.etcd.EtcdRendezvousBenchmark;
import org.rdzv.bench.rendezvous.RendezvousBench;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code rdzv bench rendezvous}: N Java nodes in this JVM join one round ({@code min = max = N})
 * against an embedded store; with {@code --vs-torch}, N PyTorch 1.13 nodes and N PyTorch 2.6 nodes
 * (threads of one Python process each; 2.6 where its root is installed) do the same against the
 * same kind of store, and the ratio to each is printed. The last line is {@code nodes=N seconds=S}
 * for rdzv.
 */
@Command(
    name = "rendezvous",
    mixinStandardHelpOptions = true,
    description = {
      "Time N nodes joining one rendezvous round, optionally against PyTorch 1.13 and 2.6.",
      "Java nodes run in this JVM against an embedded TCP store (c10d) or the backend at",
      "--etcd-endpoint; PyTorch nodes run as threads of one Python process against an embedded",
      "store of the same kind. Ends with 'nodes=N seconds=S'."
    })
public final class BenchRendezvousCommand implements Callable<Integer> {

  @Spec CommandSpec spec;

  @Option(
      names = "--nodes",
      paramLabel = "N",
      defaultValue = "16",
      description = "Nodes in the rendezvous (default: ${DEFAULT-VALUE}).")
  int nodes;

  @Option(
      names = "--vs-torch",
      description =
          "Also run N PyTorch 1.13 nodes and N PyTorch 2.6 nodes (if --torch2-root exists) and print"
              + " the ratio to each.")
  boolean vsTorch;

  @Option(
      names = "--backend",
      paramLabel = "NAME",
      defaultValue = "c10d",
      description =
          "Backend of the Java nodes: c10d (embedded store) or one that takes --etcd-endpoint (default: ${DEFAULT-VALUE}).")
  String backend;

  @Option(
      names = "--etcd-endpoint",
      paramLabel = "HOST:PORT",
      description = "Endpoint for backends other than c10d (e.g. etcd-v2, etcd-v3).")
  String etcdEndpoint;

  @Option(
      names = {"--rdzv-conf", "--rdzv_conf"},
      paramLabel = "K=V,...",
      defaultValue = "",
      description = "Extra rendezvous options for the Java nodes, e.g. store_protocol=1.13.")
  String conf;

  @Option(
      names = "--timeout",
      paramLabel = "SECONDS",
      defaultValue = "600",
      description = "Give up on a side after this long (default: ${DEFAULT-VALUE}).")
  int timeout;

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
          "Root of the PyTorch 2.6 peer (.ci/torch2-peer.sh), entered through DIR/enter; skipped"
              + " where missing (default: ${DEFAULT-VALUE}).")
  String torch2Root;

  @Option(
      names = "--curve",
      paramLabel = "N,N,...",
      split = ",",
      description =
          "Run one round per N with the Java nodes' --rdzv-conf (e.g. protocol=scalable), print"
              + " 'curve protocol=P nodes=N seconds=S' per N and the fitted growth exponent; on an"
              + " etcd backend without --etcd-endpoint, each round gets an etcd of its own.")
  List<Integer> curve;

  @Option(
      names = "--pytorch-curve",
      paramLabel = "N,N,...",
      split = ",",
      description =
          "With --curve, also run PyTorch's protocol (protocol=pytorch, Java nodes) at these N in"
              + " the same run, for comparison.")
  List<Integer> pytorchCurve;

  @Override
  public Integer call() {
    if (curve != null && !curve.isEmpty()) {
      Map<String, Object> config =
          Map.copyOf(RendezvousOptions.flag("--rdzv-conf", () -> RendezvousConfig.parse(conf)));
      for (int n : curve) {
        if (n < 1) {
          throw new IllegalArgumentException("--curve sizes must be at least 1, got " + n + ".");
        }
      }
      List<Integer> pytorchSizes = pytorchCurve == null ? List.of() : pytorchCurve;
      if (!backend.equals("c10d")) {
        if (!EtcdRendezvousBenchmark.BACKENDS.contains(backend)) {
          throw new IllegalArgumentException(
              "--curve runs on c10d (embedded store) or an etcd backend (etcd, etcd-v2, etcd-v3),"
                  + " not --backend "
                  + backend
                  + ".");
        }
        return EtcdRendezvousBenchmark.curve(
                spec.commandLine().getOut(),
                backend,
                etcdEndpoint,
                curve,
                pytorchSizes,
                config,
                Duration.ofSeconds(timeout))
            ? ExitCode.OK.code()
            : ExitCode.FAILURE.code();
      }
      return RendezvousBench.curve(
              spec.commandLine().getOut(),
              curve,
              pytorchCurve == null ? List.of() : pytorchCurve,
              config,
              Duration.ofSeconds(timeout))
          ? ExitCode.OK.code()
          : ExitCode.FAILURE.code();
    }
    if (nodes < 1) {
      throw new IllegalArgumentException("--nodes must be at least 1, got " + nodes + ".");
    }
    if (timeout < 1) {
      throw new IllegalArgumentException(
          "--timeout must be at least 1 second, got " + timeout + ".");
    }
    Map<String, Object> config =
        Map.copyOf(RendezvousOptions.flag("--rdzv-conf", () -> RendezvousConfig.parse(conf)));
    int rc =
        RendezvousBench.run(
            spec.commandLine().getOut(),
            new RendezvousBench.Options(
                nodes,
                vsTorch,
                backend,
                etcdEndpoint,
                config,
                Duration.ofSeconds(timeout),
                python,
                torch2Command(torch2Root)));
    return rc == 0 ? ExitCode.OK.code() : ExitCode.FAILURE.code();
  }

  /** {@code [DIR/enter, python3]}, or empty (with a note) where the 2.6 peer is missing. */
  List<String> torch2Command(String root) {
    if (!vsTorch || root == null || root.isBlank()) {
      return List.of();
    }
    Path enter = Path.of(root, "enter");
    if (!Files.isExecutable(enter)) {
      spec.commandLine()
          .getOut()
          .println("torch-2.6 skipped: no PyTorch 2.6 peer at " + root + " (.ci/torch2-peer.sh)");
      return List.of();
    }
    return List.of(enter.toString(), "python3");
  }
}
