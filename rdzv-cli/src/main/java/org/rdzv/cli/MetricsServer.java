package org.rdzv.cli;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.micrometer.core.instrument.Metrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Serves the process's metrics as Prometheus text at {@code http://HOST:PORT/metrics}, with the
 * JDK's HTTP server: {@code rdzv store --metrics-port} and {@code rdzv run --metrics-port}.
 *
 * <p>{@link #start} creates a Prometheus registry, adds it to {@link Metrics#globalRegistry} (where
 * rdzv's components record by default, so everything they record from then on is served) and binds
 * the JVM's memory, GC, thread, CPU, descriptor and uptime meters to it. {@link #close()} stops the
 * HTTP server and removes the registry again. One scrape is served at a time, on one thread.
 *
 * <pre>{@code
 * try (MetricsServer metrics = MetricsServer.start("", 9464)) {
 *   LOG.log(INFO, "metrics at {0}", metrics.url());
 *   ...
 * }
 * }</pre>
 */
public final class MetricsServer implements AutoCloseable {
  private static final System.Logger LOG = System.getLogger(MetricsServer.class.getName());

  /** The Prometheus text exposition format, version 0.0.4. */
  static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

  private final PrometheusMeterRegistry registry;
  private final JvmGcMetrics gc;
  private final HttpServer http;
  private final ExecutorService executor;
  private final String url;

  private MetricsServer(
      PrometheusMeterRegistry registry,
      JvmGcMetrics gc,
      HttpServer http,
      ExecutorService executor,
      String url) {
    this.registry = registry;
    this.gc = gc;
    this.http = http;
    this.executor = executor;
    this.url = url;
  }

  /**
   * Binds {@code host:port} (empty host: every address; port 0: a free port) and starts serving.
   *
   * @throws UncheckedIOException naming the address if it cannot be bound
   */
  public static MetricsServer start(String host, int port) {
    InetSocketAddress bind =
        host == null || host.isBlank()
            ? new InetSocketAddress(port)
            : new InetSocketAddress(host.strip(), port);
    HttpServer http;
    try {
      http = HttpServer.create(bind, 16);
    } catch (IOException e) {
      throw new UncheckedIOException(
          "the metrics server cannot listen on "
              + (host == null || host.isBlank() ? "[::]" : host)
              + ":"
              + port
              + ": "
              + e.getMessage(),
          e);
    }
    PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    new JvmMemoryMetrics().bindTo(registry);
    new JvmThreadMetrics().bindTo(registry);
    new ProcessorMetrics().bindTo(registry);
    new FileDescriptorMetrics().bindTo(registry);
    new UptimeMetrics().bindTo(registry);
    JvmGcMetrics gc = new JvmGcMetrics();
    gc.bindTo(registry);
    Metrics.globalRegistry.add(registry);
    ExecutorService executor =
        Executors.newSingleThreadExecutor(
            r -> Thread.ofPlatform().daemon().name("rdzv-metrics-http").unstarted(r));
    http.setExecutor(executor);
    http.createContext("/metrics", exchange -> serve(exchange, registry));
    http.createContext(
        "/",
        exchange -> {
          exchange.sendResponseHeaders(404, -1);
          exchange.close();
        });
    http.start();
    InetSocketAddress bound = http.getAddress();
    String shown =
        host == null || host.isBlank()
            ? "[::]"
            : (host.indexOf(':') >= 0 ? "[" + host.strip() + "]" : host.strip());
    return new MetricsServer(
        registry, gc, http, executor, "http://" + shown + ":" + bound.getPort() + "/metrics");
  }

  private static void serve(HttpExchange exchange, PrometheusMeterRegistry registry)
      throws IOException {
    try (exchange) {
      String method = exchange.getRequestMethod();
      if (!method.equals("GET") && !method.equals("HEAD")) {
        exchange.getResponseHeaders().set("Allow", "GET, HEAD");
        exchange.sendResponseHeaders(405, -1);
        return;
      }
      byte[] body = registry.scrape().getBytes(StandardCharsets.UTF_8);
      exchange.getResponseHeaders().set("Content-Type", CONTENT_TYPE);
      if (method.equals("HEAD")) {
        exchange.sendResponseHeaders(200, -1);
        return;
      }
      exchange.sendResponseHeaders(200, body.length);
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(body);
      }
    } catch (IOException | RuntimeException e) {
      LOG.log(Level.DEBUG, "serving a scrape failed", e);
    }
  }

  /** The bound port (the chosen one when 0 was asked). */
  public int port() {
    return http.getAddress().getPort();
  }

  /** {@code http://HOST:PORT/metrics}, HOST as given ({@code [::]} for every address). */
  public String url() {
    return url;
  }

  /** The registry served (also added to {@link Metrics#globalRegistry}). */
  public PrometheusMeterRegistry registry() {
    return registry;
  }

  /** Stops serving and removes the registry from the global one. Idempotent. */
  @Override
  public void close() {
    http.stop(0);
    executor.shutdownNow();
    Metrics.globalRegistry.remove(registry);
    gc.close();
    registry.close();
  }
}
