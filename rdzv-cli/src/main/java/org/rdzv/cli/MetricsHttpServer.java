package org.rdzv.cli;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Supplier;

/**
 * Serves Prometheus text at {@code /metrics} over the JDK's HTTP server, one virtual thread per
 * request; other paths answer 404, other methods 405. The one place where {@code rdzv run} serves
 * its metrics (a seam: a shared server class of rdzv-cli may replace it).
 */
final class MetricsHttpServer implements AutoCloseable {
  static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

  private final HttpServer server;
  private final ExecutorService threads;

  private MetricsHttpServer(HttpServer server, ExecutorService threads) {
    this.server = server;
    this.threads = threads;
  }

  /**
   * Starts serving {@code scrape} (called once per request) on {@code host} (empty: every address)
   * and {@code port} (0: a free one).
   *
   * @throws UncheckedIOException if the port cannot be bound, naming it
   */
  static MetricsHttpServer start(String host, int port, Supplier<String> scrape) {
    InetSocketAddress address;
    HttpServer server;
    try {
      address =
          host == null || host.isEmpty()
              ? new InetSocketAddress(port)
              : new InetSocketAddress(InetAddress.getByName(host), port);
      server = HttpServer.create(address, 0);
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot serve metrics on "
              + (host == null || host.isEmpty() ? "*" : host)
              + ":"
              + port
              + ": "
              + e.getMessage(),
          e);
    }
    ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor();
    server.setExecutor(threads);
    server.createContext("/", exchange -> answer(exchange, scrape));
    server.start();
    return new MetricsHttpServer(server, threads);
  }

  private static void answer(HttpExchange exchange, Supplier<String> scrape) throws IOException {
    try (exchange) {
      String method = exchange.getRequestMethod();
      if (!exchange.getRequestURI().getPath().equals("/metrics")) {
        send(exchange, 404, "text/plain; charset=utf-8", "not found: metrics are at /metrics\n");
      } else if (!method.equals("GET") && !method.equals("HEAD")) {
        exchange.getResponseHeaders().set("Allow", "GET, HEAD");
        send(exchange, 405, "text/plain; charset=utf-8", "use GET\n");
      } else {
        send(exchange, 200, CONTENT_TYPE, scrape.get());
      }
    }
  }

  private static void send(HttpExchange exchange, int status, String type, String body)
      throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    exchange.getResponseHeaders().set("Content-Type", type);
    boolean head = exchange.getRequestMethod().equals("HEAD");
    exchange.sendResponseHeaders(status, head ? -1 : bytes.length);
    if (!head) {
      try (OutputStream out = exchange.getResponseBody()) {
        out.write(bytes);
      }
    }
  }

  /** The port it listens on. */
  int port() {
    return server.getAddress().getPort();
  }

  /** Stops at once; requests in flight are cut. Idempotent. */
  @Override
  public void close() {
    server.stop(0);
    threads.shutdownNow();
  }
}
