package org.rdzv.cli;

import io.micrometer.core.instrument.Metrics;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.PrintWriter;
import picocli.CommandLine.Option;

/**
 * {@code --metrics-port} and {@code --metrics-host}: serve this process's meters as Prometheus text
 * at {@code http://HOST:PORT/metrics} while the command runs.
 */
final class MetricsOptions {
  @Option(
      names = {"--metrics-port"},
      paramLabel = "PORT",
      description =
          "Serve Prometheus metrics at http://HOST:PORT/metrics while running (0: a free port,"
              + " printed); off by default.")
  Integer port;

  @Option(
      names = {"--metrics-host"},
      paramLabel = "HOST",
      defaultValue = "",
      description = "Address the metrics server binds (default: every address).")
  String host;

  /**
   * Starts serving if {@code --metrics-port} was given, and prints {@code <command>: serving
   * metrics on http://H:P/metrics} on {@code err}; else does nothing and returns a no-op.
   *
   * @throws java.io.UncheckedIOException if the port cannot be bound
   */
  Opened start(String command, PrintWriter err) {
    if (port == null) {
      return Opened.NOTHING;
    }
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("--metrics-port must be 0..65535, not " + port + ".");
    }
    Serving serving = new Serving(host, port);
    String shown = host.isEmpty() ? "[::]" : (host.indexOf(':') >= 0 ? "[" + host + "]" : host);
    err.println(
        "rdzv "
            + command
            + ": serving metrics on http://"
            + shown
            + ":"
            + serving.port()
            + "/metrics");
    err.flush();
    return serving;
  }

  /**
   * A Prometheus registry added to Micrometer's global registry (where rdzv's handlers and agent
   * record by default), with the JVM's and the process's meters, served over HTTP.
   */
  static final class Serving implements Opened {
    private final PrometheusMeterRegistry registry =
        new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    private final JvmGcMetrics gc = new JvmGcMetrics();
    private final MetricsHttpServer server;

    Serving(String host, int port) {
      new JvmMemoryMetrics().bindTo(registry);
      gc.bindTo(registry);
      new JvmThreadMetrics().bindTo(registry);
      new ClassLoaderMetrics().bindTo(registry);
      new ProcessorMetrics().bindTo(registry);
      new UptimeMetrics().bindTo(registry);
      new FileDescriptorMetrics().bindTo(registry);
      try {
        server = MetricsHttpServer.start(host, port, registry::scrape);
      } catch (RuntimeException e) {
        gc.close();
        registry.close();
        throw e;
      }
      Metrics.addRegistry(registry);
    }

    int port() {
      return server.port();
    }

    @Override
    public void close() {
      server.close();
      Metrics.removeRegistry(registry);
      gc.close();
      registry.close();
    }
  }
}
