package org.rdzv.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/**
 * A real etcd server (Debian's {@code etcd-server} 3.4, {@link Peers#etcdBinary()}) for tests, the
 * counterpart of Curator's {@code TestingServer}: free loopback ports, the v2 API enabled ({@code
 * --enable-v2=true}), data in a fresh temporary directory, started and waited on until healthy
 * within a deadline, killed (and its directory deleted) on {@link #close()}.
 *
 * <p>{@link #startCluster(int)} starts several members that form one cluster on loopback; any
 * member can be {@link #kill() killed} to test fail-over. Call {@link Peers#requireEtcdServer()}
 * before starting one. Always use try-with-resources.
 */
public final class EtcdProcess implements AutoCloseable {
  private static final Duration START_DEADLINE = Duration.ofSeconds(30);
  private static final HttpClient HTTP =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(2))
          .build();

  private final String name;
  private final int clientPort;
  private final Path dataDir;
  private final Path log;
  private final Process process;
  private final boolean tls;

  private EtcdProcess(
      String name, int clientPort, Path dataDir, Path log, Process process, boolean tls) {
    this.name = name;
    this.clientPort = clientPort;
    this.dataDir = dataDir;
    this.log = log;
    this.process = process;
    this.tls = tls;
  }

  /**
   * Starts one member serving clients over TLS only, with {@code serverCert}/{@code serverKey},
   * requiring client certificates signed by {@code caCert} ({@code --client-cert-auth}); returns
   * once its client port accepts connections.
   */
  public static EtcdProcess startTls(Path serverCert, Path serverKey, Path caCert) {
    Path etcd = Peers.etcdBinary();
    if (etcd == null) {
      throw new IllegalStateException("no etcd binary; call Peers.requireEtcdServer() first");
    }
    int client = FreePort.next();
    int peer = FreePort.next();
    EtcdProcess member =
        launch(
            etcd,
            "m0",
            client,
            peer,
            "m0=http://127.0.0.1:" + peer,
            "rdzv-tls-" + System.nanoTime(),
            List.of(
                "--cert-file",
                serverCert.toString(),
                "--key-file",
                serverKey.toString(),
                "--trusted-ca-file",
                caCert.toString(),
                "--client-cert-auth"));
    member.awaitHealthy(START_DEADLINE);
    return member;
  }

  /** Starts one etcd member and returns once it reports healthy. */
  public static EtcdProcess start() {
    return startCluster(1).members().get(0);
  }

  /**
   * Starts {@code size} members forming one cluster (fast elections: 50 ms heartbeats, 500 ms
   * election timeout) and returns once every member reports healthy.
   */
  public static Cluster startCluster(int size) {
    if (size < 1) {
      throw new IllegalArgumentException("a cluster needs at least one member, not " + size);
    }
    Path etcd = Peers.etcdBinary();
    if (etcd == null) {
      throw new IllegalStateException("no etcd binary; call Peers.requireEtcdServer() first");
    }
    AssertionError last = null;
    // A port picked by FreePort may be taken again before etcd binds it; try a few fresh sets.
    for (int attempt = 0; attempt < 3; attempt++) {
      List<EtcdProcess> started = new ArrayList<>();
      try {
        int[] clientPorts = new int[size];
        int[] peerPorts = new int[size];
        StringBuilder initial = new StringBuilder();
        for (int i = 0; i < size; i++) {
          clientPorts[i] = FreePort.next();
          peerPorts[i] = FreePort.next();
          initial
              .append(i == 0 ? "" : ",")
              .append("m")
              .append(i)
              .append("=http://127.0.0.1:")
              .append(peerPorts[i]);
        }
        String token = "rdzv-test-" + ProcessHandle.current().pid() + "-" + System.nanoTime();
        for (int i = 0; i < size; i++) {
          started.add(
              launch(
                  etcd,
                  "m" + i,
                  clientPorts[i],
                  peerPorts[i],
                  initial.toString(),
                  token,
                  List.of()));
        }
        for (EtcdProcess member : started) {
          member.awaitHealthy(START_DEADLINE);
        }
        return new Cluster(started);
      } catch (AssertionError e) {
        last = e;
        started.forEach(EtcdProcess::close);
      }
    }
    throw last;
  }

  private static EtcdProcess launch(
      Path etcd,
      String name,
      int clientPort,
      int peerPort,
      String initialCluster,
      String token,
      List<String> tlsArgs) {
    try {
      // On tmpfs where there is one: tests and benchmarks measure the rendezvous, not fsync.
      Path shm = Path.of("/dev/shm");
      Path dir =
          Files.isDirectory(shm) && Files.isWritable(shm)
              ? Files.createTempDirectory(shm, "rdzv-etcd-" + name + "-")
              : Files.createTempDirectory("rdzv-etcd-" + name + "-");
      Path log = dir.resolve("etcd.log");
      String client = (tlsArgs.isEmpty() ? "http" : "https") + "://127.0.0.1:" + clientPort;
      String peer = "http://127.0.0.1:" + peerPort;
      List<String> command =
          new ArrayList<>(
              List.of(
                  etcd.toString(),
                  "--name",
                  name,
                  "--data-dir",
                  dir.resolve("data").toString(),
                  "--enable-v2=true",
                  "--listen-client-urls",
                  client,
                  "--advertise-client-urls",
                  client,
                  "--listen-peer-urls",
                  peer,
                  "--initial-advertise-peer-urls",
                  peer,
                  "--initial-cluster",
                  initialCluster,
                  "--initial-cluster-token",
                  token,
                  "--initial-cluster-state",
                  "new",
                  "--heartbeat-interval",
                  "50",
                  "--election-timeout",
                  "500",
                  "--logger",
                  "zap",
                  "--log-level",
                  "warn"));
      command.addAll(tlsArgs);
      Process process =
          new ProcessBuilder(command)
              .redirectErrorStream(true)
              .redirectOutput(log.toFile())
              .start();
      return new EtcdProcess(name, clientPort, dir, log, process, !tlsArgs.isEmpty());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start " + etcd, e);
    }
  }

  private void awaitHealthy(Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    long pauseNanos = 5_000_000;
    while (true) {
      if (!process.isAlive()) {
        throw new AssertionError(
            "etcd " + name + " exited with " + process.exitValue() + ":\n" + logText());
      }
      if (healthy()) {
        return;
      }
      if (System.nanoTime() - deadline > 0) {
        throw new AssertionError(
            "etcd " + name + " not healthy after " + timeout + ":\n" + logText());
      }
      java.util.concurrent.locks.LockSupport.parkNanos(pauseNanos);
      pauseNanos = Math.min(pauseNanos * 2, 100_000_000);
    }
  }

  /**
   * Whether the member answers {@code /health} with {@code "health":"true"} (for a TLS member:
   * whether its client port accepts connections).
   */
  public boolean healthy() {
    if (tls) {
      try (java.net.Socket socket = new java.net.Socket()) {
        socket.connect(new java.net.InetSocketAddress("127.0.0.1", clientPort), 2000);
        return true;
      } catch (IOException e) {
        return false;
      }
    }
    try {
      HttpResponse<String> response =
          HTTP.send(
              HttpRequest.newBuilder(URI.create(url() + "/health"))
                  .timeout(Duration.ofSeconds(2))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      return response.statusCode() == 200
          && response.body().replace(" ", "").contains("\"health\":\"true\"");
    } catch (IOException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /** The member's name in the cluster ({@code m0}, {@code m1}, ...). */
  public String name() {
    return name;
  }

  /** {@code 127.0.0.1:<client port>}, as a rendezvous endpoint. */
  public String endpoint() {
    return "127.0.0.1:" + clientPort;
  }

  /** {@code http://127.0.0.1:<client port>} ({@code https} for a TLS member). */
  public String url() {
    return (tls ? "https://" : "http://") + endpoint();
  }

  public int clientPort() {
    return clientPort;
  }

  public boolean isAlive() {
    return process.isAlive();
  }

  /** Kills the member at once (SIGKILL), as a crash would; idempotent. Keeps its data directory. */
  public void kill() {
    process.destroyForcibly();
    try {
      process.waitFor(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  /** The member's log so far, for assertion messages. */
  public String logText() {
    try {
      return Files.exists(log) ? Files.readString(log, StandardCharsets.UTF_8) : "";
    } catch (IOException e) {
      return "<cannot read " + log + ": " + e + ">";
    }
  }

  /** Kills the member and deletes its data directory. Idempotent. */
  @Override
  public void close() {
    kill();
    try (Stream<Path> paths = Files.walk(dataDir)) {
      for (Path path : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(path);
      }
    } catch (IOException e) {
      // Best effort: a leftover temporary directory is harmless.
    }
  }

  /** Several members forming one etcd cluster. */
  public static final class Cluster implements AutoCloseable {
    private final List<EtcdProcess> members;

    private Cluster(List<EtcdProcess> members) {
      this.members = List.copyOf(members);
    }

    public List<EtcdProcess> members() {
      return members;
    }

    public EtcdProcess member(int index) {
      return members.get(index);
    }

    /** Every member's client endpoint, comma-separated: {@code h1:p1,h2:p2,...}. */
    public String endpoints() {
      return members.stream().map(EtcdProcess::endpoint).collect(Collectors.joining(","));
    }

    @Override
    public void close() {
      members.forEach(EtcdProcess::close);
    }
  }
}
