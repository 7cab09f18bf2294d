package org.rdzv.cli;

import java.io.PrintWriter;
import picocli.CommandLine.Option;

/**
 * {@code --metrics-port} and {@code --metrics-host} of {@code rdzv run}: serve this process's
 * meters as Prometheus text at {@code http://HOST:PORT/metrics} ({@link MetricsServer}) while the
 * command runs.
 */
final class MetricsOptions {
  @Option(
      names = {"--metrics-port", "--metrics_port"},
      paramLabel = "PORT",
      description =
          "Serve Prometheus metrics at http://HOST:PORT/metrics while running (0 picks a free"
              + " port; the address is printed). Default: no metrics server.")
  Integer port;

  @Option(
      names = {"--metrics-host", "--metrics_host"},
      paramLabel = "HOST",
      defaultValue = "",
      description = "Address the metrics server binds (default: every address).")
  String host;

  /**
   * Starts serving if {@code --metrics-port} was given, and prints {@code rdzv <command>: serving
   * Prometheus metrics at http://H:P/metrics} on {@code err}; else does nothing.
   *
   * @throws IllegalArgumentException for a port out of range
   * @throws java.io.UncheckedIOException if the port cannot be bound
   */
  Opened start(String command, PrintWriter err) {
    if (port == null) {
      return Opened.NOTHING;
    }
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("--metrics-port must be 0..65535, not " + port + ".");
    }
    MetricsServer server = MetricsServer.start(host, port);
    err.println("rdzv " + command + ": serving Prometheus metrics at " + server.url());
    err.flush();
    return server::close;
  }
}
