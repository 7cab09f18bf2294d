package org.rdzv.cli;

import java.io.PrintWriter;
import java.lang.System.Logger.Level;
import java.time.Duration;
import java.util.concurrent.Callable;
import org.rdzv.api.Endpoint;
import org.rdzv.api.StoreException;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.store.TcpStoreServerOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code rdzv store}: runs a TCPStore server in the foreground, speaking PyTorch 1.13's and 2.x's
 * protocols (chosen per connection). Prints one line containing {@code listening on HOST:PORT} once
 * it accepts connections and stops cleanly on SIGINT/SIGTERM. If the server fails (for example out
 * of heap) it says so in one line and exits with {@link ExitCode#FAILURE}.
 */
@Command(
    name = "store",
    mixinStandardHelpOptions = true,
    description = {
      "Run a TCPStore server (PyTorch 1.13 and 2.x protocols) in the foreground.",
      "Torch workers use it with TORCHELASTIC_USE_AGENT_STORE=True and MASTER_ADDR/MASTER_PORT."
    })
public final class StoreCommand implements Callable<Integer> {
  private static final System.Logger LOG = System.getLogger(StoreCommand.class.getName());

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
      names = {"--max-connections", "--max_connections"},
      paramLabel = "N",
      defaultValue = "16384",
      description =
          "Most client connections at once; more are accepted and closed at once (default:"
              + " ${DEFAULT-VALUE}).")
  int maxConnections;

  @Option(
      names = {"--memory-budget", "--memory_budget"},
      paramLabel = "BYTES",
      converter = ByteSize.class,
      description = {
        "Memory the server may hold for its clients, e.g. 512m, 2g (default: a quarter of the"
            + " heap). Half is for stored data (a write past it is refused), half for"
            + " connections: 8 KiB each, then half-received requests, unread replies and parked"
            + " waits (past it, a connection waits until memory is given back)."
      })
  Long memoryBudget;

  @Option(
      names = {"--max-queued-reply-bytes", "--max_queued_reply_bytes"},
      paramLabel = "BYTES",
      converter = ByteSize.class,
      defaultValue = "16m",
      description =
          "Replies queued for one connection before it is no longer read from, until it has read"
              + " half of them (default: ${DEFAULT-VALUE}).")
  long maxQueuedReplyBytes;

  @Option(
      names = {"--frame-idle-timeout", "--frame_idle_timeout"},
      paramLabel = "SECONDS",
      defaultValue = "30",
      description =
          "Close a connection that leaves a request half-sent this long (default: ${DEFAULT-VALUE}).")
  double frameIdleTimeout;

  @Option(
      names = {"--reply-drain-timeout", "--reply_drain_timeout"},
      paramLabel = "SECONDS",
      defaultValue = "30",
      description =
          "Close a connection that does not read its replies (and is no longer read from) this"
              + " long (default: ${DEFAULT-VALUE}).")
  double replyDrainTimeout;

  @Option(
      names = {"--metrics-port", "--metrics_port"},
      paramLabel = "PORT",
      description =
          "Serve Prometheus metrics at http://HOST:PORT/metrics (HOST as --host; 0 picks a free"
              + " port; the address is logged). Default: no metrics server.")
  Integer metricsPort;

  @Option(
      names = "--backlog",
      paramLabel = "N",
      defaultValue = "16384",
      description = "Accept backlog (capped by net.core.somaxconn) (default: ${DEFAULT-VALUE}).")
  int backlog;

  @Override
  public Integer call() throws InterruptedException {
    TcpStoreServerOptions.Builder builder =
        TcpStoreServerOptions.builder()
            .host(host)
            .port(port)
            .backlog(backlog)
            .maxKeyLength(maxKeyLength)
            .maxValueLength(maxValueLength)
            .maxKeysPerRequest(maxKeysPerRequest)
            .maxConnections(maxConnections)
            .maxQueuedReplyBytes(maxQueuedReplyBytes)
            .frameIdleTimeout(seconds("--frame-idle-timeout", frameIdleTimeout))
            .replyDrainTimeout(seconds("--reply-drain-timeout", replyDrainTimeout));
    if (memoryBudget != null) {
      builder.memoryBudget(memoryBudget);
    }
    TcpStoreServerOptions options = builder.build();
    MetricsServer metrics = null;
    if (metricsPort != null) {
      metrics = MetricsServer.start(host, metricsPort);
      LOG.log(Level.INFO, "rdzv store: serving Prometheus metrics at {0}", metrics.url());
    }
    try {
      return serve(options);
    } finally {
      if (metrics != null) {
        metrics.close();
      }
    }
  }

  private static Duration seconds(String flag, double seconds) {
    if (!(seconds > 0) || seconds > 1e9) {
      throw new IllegalArgumentException(flag + " must be a positive number of seconds");
    }
    return Duration.ofNanos((long) (seconds * 1e9));
  }

  private int serve(TcpStoreServerOptions options) throws InterruptedException {
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
        // serve until a signal (shutdown hook), a close or a failure
      }
      Throwable failure = server.failure().orElse(null);
      if (failure != null) {
        // The server logged its line; this one is the command's, and the exit code says it too.
        throw new StoreException(
            "the TCPStore server on "
                + shown
                + ":"
                + server.port()
                + " failed: "
                + failure.getClass().getName()
                + (failure.getMessage() == null ? "" : ": " + failure.getMessage()));
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
