package org.rdzv.cli;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.concurrent.Callable;
import org.rdzv.api.Endpoint;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.store.TcpStoreServerOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code rdzv store}: runs a TCPStore server in the foreground, speaking PyTorch 1.13's and 2.x's
 * protocols (chosen per connection). Prints one line containing {@code listening on HOST:PORT} once
 * it accepts connections and stops cleanly on SIGINT/SIGTERM.
 */
@Command(
    name = "store",
    mixinStandardHelpOptions = true,
    description = {
      "Run a TCPStore server (PyTorch 1.13 and 2.x protocols) in the foreground.",
      "Torch workers use it with TORCHELASTIC_USE_AGENT_STORE=True and MASTER_ADDR/MASTER_PORT."
    })
public final class StoreCommand implements Callable<Integer> {

  @Spec CommandSpec spec;

  @Option(
      names = "--host",
      paramLabel = "HOST",
      defaultValue = "",
      description = "Address to bind (default: every address, IPv4 and IPv6).")
  String host;

  @Option(
      names = "--port",
      paramLabel = "PORT",
      defaultValue = "" + Endpoint.C10D_DEFAULT_PORT,
      description = "Port to listen on; 0 picks a free port (default: ${DEFAULT-VALUE}).")
  int port;

  @Option(
      names = {"--max-key-length", "--max_key_length"},
      paramLabel = "BYTES",
      defaultValue = "8192",
      description =
          "Longest key accepted; longer closes the connection (default: ${DEFAULT-VALUE}, as PyTorch 2.x).")
  int maxKeyLength;

  @Option(
      names = {"--max-value-length", "--max_value_length"},
      paramLabel = "BYTES",
      defaultValue = "8388608",
      description = "Longest value accepted (default: ${DEFAULT-VALUE} = 8 MiB, as PyTorch 2.x).")
  int maxValueLength;

  @Option(
      names = {"--max-keys-per-request", "--max_keys_per_request"},
      paramLabel = "N",
      defaultValue = "131072",
      description = "Most keys in one CHECK/WAIT/MULTI_GET/MULTI_SET (default: ${DEFAULT-VALUE}).")
  int maxKeysPerRequest;

  @Option(
      names = "--backlog",
      paramLabel = "N",
      defaultValue = "16384",
      description = "Accept backlog (capped by net.core.somaxconn) (default: ${DEFAULT-VALUE}).")
  int backlog;

  @Override
  public Integer call() throws InterruptedException {
    TcpStoreServerOptions options =
        TcpStoreServerOptions.builder()
            .host(host)
            .port(port)
            .backlog(backlog)
            .maxKeyLength(maxKeyLength)
            .maxValueLength(maxValueLength)
            .maxKeysPerRequest(maxKeysPerRequest)
            .build();
    TcpStoreServer server = TcpStoreServer.start(options);
    PrintWriter out = spec.commandLine().getOut();
    Thread hook =
        new Thread(
            () -> {
              server.close();
              out.println("rdzv store: stopped");
              out.flush();
            },
            "rdzv-store-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);
    String shown = host.isEmpty() ? "[::]" : (host.indexOf(':') >= 0 ? "[" + host + "]" : host);
    out.println(
        "rdzv store: TCPStore server (PyTorch 1.13 and 2.x protocols) listening on "
            + shown
            + ":"
            + server.port());
    out.flush();
    try {
      while (!server.awaitTermination(Duration.ofDays(1))) {
        // serve until a signal (shutdown hook) or close
      }
    } finally {
      server.close();
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException shuttingDown) {
        // the hook is running: the JVM exits after it
      }
    }
    return ExitCode.OK.code();
  }
}
