package org.rdzv.etcd.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * A throw-away single-member etcd (v2 API on) on free loopback ports, its data on tmpfs where
 * available, for a benchmark run.
 */
final class LocalEtcd implements AutoCloseable {
  private final Process process;
  private final Path dir;
  private final int clientPort;

  private LocalEtcd(Process process, Path dir, int clientPort) {
    this.process = process;
    this.dir = dir;
    this.clientPort = clientPort;
  }

  /**
   * The etcd binary: {@code RDZV_ETCD}, else /usr/bin/etcd or /usr/local/bin/etcd; null if none.
   */
  static Path binary() {
    for (String candidate :
        new String[] {System.getenv("RDZV_ETCD"), "/usr/bin/etcd", "/usr/local/bin/etcd"}) {
      if (candidate != null && Files.isExecutable(Path.of(candidate))) {
        return Path.of(candidate);
      }
    }
    return null;
  }

  static LocalEtcd start() {
    Path etcd = binary();
    if (etcd == null) {
      throw new IllegalStateException(
          "no etcd server binary found (install etcd-server, or pass --etcd-endpoint)");
    }
    try {
      // On tmpfs when there is one: the benchmark measures the rendezvous, not the disk's fsync.
      Path shm = Path.of("/dev/shm");
      Path dir =
          Files.isDirectory(shm) && Files.isWritable(shm)
              ? Files.createTempDirectory(shm, "rdzv-bench-etcd-")
              : Files.createTempDirectory("rdzv-bench-etcd-");
      int client = freePort();
      int peer = freePort();
      String clientUrl = "http://127.0.0.1:" + client;
      String peerUrl = "http://127.0.0.1:" + peer;
      Process process =
          new ProcessBuilder(
                  List.of(
                      etcd.toString(),
                      "--name",
                      "bench",
                      "--data-dir",
                      dir.resolve("data").toString(),
                      "--enable-v2=true",
                      "--listen-client-urls",
                      clientUrl,
                      "--advertise-client-urls",
                      clientUrl,
                      "--listen-peer-urls",
                      peerUrl,
                      "--initial-advertise-peer-urls",
                      peerUrl,
                      "--initial-cluster",
                      "bench=" + peerUrl,
                      "--logger",
                      "zap",
                      "--log-level",
                      "error"))
              .redirectErrorStream(true)
              .redirectOutput(dir.resolve("etcd.log").toFile())
              .start();
      LocalEtcd local = new LocalEtcd(process, dir, client);
      // A benchmark stopped by a signal must not leave an etcd (and its tmpfs data) behind.
      Runtime.getRuntime().addShutdownHook(new Thread(local::close, "rdzv-bench-etcd-stop"));
      local.awaitHealthy(Duration.ofSeconds(30));
      return local;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start etcd", e);
    }
  }

  String endpoint() {
    return "127.0.0.1:" + clientPort;
  }

  private void awaitHealthy(Duration timeout) {
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new IllegalStateException("etcd exited at start; see " + dir.resolve("etcd.log"));
      }
      try {
        HttpResponse<String> r =
            http.send(
                HttpRequest.newBuilder(URI.create("http://" + endpoint() + "/health")).build(),
                HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() == 200 && r.body().contains("true")) {
          return;
        }
      } catch (IOException e) {
        // not up yet
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while starting etcd", e);
      }
      java.util.concurrent.locks.LockSupport.parkNanos(50_000_000);
    }
    close();
    throw new IllegalStateException("etcd not healthy after " + timeout);
  }

  private static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }

  @Override
  public void close() {
    process.destroyForcibly();
    try {
      process.waitFor(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      // a leftover temporary directory is harmless
    }
  }
}
