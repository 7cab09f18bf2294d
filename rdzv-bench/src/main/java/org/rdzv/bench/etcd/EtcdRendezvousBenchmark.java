package org.rdzv.bench.etcd;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.testing.ChildProcess;
import org.rdzv.testing.EtcdProcess;
import org.rdzv.testing.Peers;

/**
 * {@code rdzv bench rendezvous --backend etcd|etcd-v2|etcd-v3}: times N Java nodes (handlers on
 * threads of this process) completing one round with {@code min = max = N}, then the same N PyTorch
 * 1.13 nodes (threads of one Python process) on PyTorch's matching etcd backend ({@code etcd} for
 * {@code etcd}, {@code etcd-v2} for {@code etcd-v2} and {@code etcd-v3}, which PyTorch lacks), and
 * prints both and their ratio. Time runs, on both sides, from the start of N threads that each
 * create a handler and join, until the last node has its rank (as the c10d benchmark counts).
 */
public final class EtcdRendezvousBenchmark {
  /** The backends this benchmark measures. */
  public static final Set<String> BACKENDS = Set.of("etcd", "etcd-v2", "etcd-v3");

  private static final ObjectMapper JSON = new ObjectMapper();

  /** Held strongly: java.util.logging forgets the level of a logger nobody references. */
  private static final java.util.logging.Logger RDZV_LOGS =
      java.util.logging.Logger.getLogger("org.rdzv");

  private EtcdRendezvousBenchmark() {}

  /**
   * What to run.
   *
   * @param backend {@code etcd}, {@code etcd-v2} or {@code etcd-v3}
   * @param etcdEndpoint etcd to use ({@code h:p[,h:p...]}), or {@code null} to start one for the
   *     run
   * @param nodes how many nodes join, at least 1
   * @param timeout the longest a run may take (join timeout of every node)
   * @param pytorch whether to also time PyTorch's nodes
   * @param python the interpreter with torch 1.13 and python-etcd
   * @param config extra rendezvous options for the Java nodes ({@code --rdzv-conf}, e.g. {@code
   *     protocol=scalable}); PyTorch's nodes get none of them
   */
  public record Options(
      String backend,
      String etcdEndpoint,
      int nodes,
      Duration timeout,
      boolean pytorch,
      String python,
      Map<String, Object> config) {
    public Options {
      config = config == null ? Map.of() : Map.copyOf(config);
      if (!BACKENDS.contains(backend)) {
        throw new IllegalArgumentException(
            "--backend must be etcd, etcd-v2 or etcd-v3 for the etcd benchmark, not '"
                + backend
                + "'");
      }
      if (nodes < 1) {
        throw new IllegalArgumentException("--nodes must be at least 1, not " + nodes);
      }
      if (timeout == null || timeout.isNegative() || timeout.isZero()) {
        throw new IllegalArgumentException("the benchmark timeout must be positive");
      }
      python =
          python == null ? System.getenv().getOrDefault("RDZV_PYTHON", "/usr/bin/python3") : python;
    }

    public Options(String backend, String etcdEndpoint, int nodes) {
      this(backend, etcdEndpoint, nodes, Duration.ofSeconds(300), true, null, Map.of());
    }

    /** Without extra options for the Java nodes. */
    public Options(
        String backend,
        String etcdEndpoint,
        int nodes,
        Duration timeout,
        boolean pytorch,
        String python) {
      this(backend, etcdEndpoint, nodes, timeout, pytorch, python, Map.of());
    }
  }

  /** {@link #run(PrintWriter, Options)} to a stream. */
  public static int run(PrintStream out, Options options) {
    PrintWriter writer = new PrintWriter(out, true);
    try {
      return run(writer, options);
    } finally {
      writer.flush();
    }
  }

  /**
   * Runs the benchmark, printing to {@code out}: the etcd used, a line per side ({@code pytorch
   * <backend> nodes=N seconds=S}, {@code rdzv <backend> nodes=N seconds=S}), the ratio, and last
   * {@code nodes=N seconds=S} for rdzv, as the c10d benchmark does. Returns 0, or 1 if the Java
   * nodes failed.
   */
  public static int run(PrintWriter out, Options options) {
    // A line per node at INFO would drown the figures.
    java.util.logging.Level previousLevel = RDZV_LOGS.getLevel();
    RDZV_LOGS.setLevel(java.util.logging.Level.WARNING);
    EtcdProcess local = null;
    String endpoint = options.etcdEndpoint();
    try {
      if (endpoint == null || endpoint.isBlank()) {
        local = startEtcd();
        endpoint = local.endpoint();
        out.println("etcd " + endpoint + " (started for this run, v2 API enabled)");
      } else {
        out.println("etcd " + endpoint);
      }
      out.println(
          "backend "
              + options.backend()
              + ", "
              + options.nodes()
              + " nodes, min = max = "
              + options.nodes()
              + (options.config().isEmpty() ? "" : ", rdzv conf " + options.config())
              + " (rdzv after an untimed warm-up round of "
              + org.rdzv.bench.rendezvous.RendezvousBench.warmUpNodes(options.nodes())
              + " nodes)");
      out.flush();
      double java;
      try {
        // An untimed round of up to 1,000 nodes first: class loading, JIT and the first connection
        // (jetcd's gRPC channel) are paid once per process, like PyTorch's imports before its
        // clock.
        timeJava(
            new Options(
                options.backend(),
                endpoint,
                org.rdzv.bench.rendezvous.RendezvousBench.warmUpNodes(options.nodes()),
                options.timeout(),
                false,
                options.python(),
                options.config()),
            endpoint);
        java = timeJava(options, endpoint);
      } catch (RuntimeException e) {
        out.println(
            "rdzv "
                + options.backend()
                + " nodes="
                + options.nodes()
                + " FAILED: "
                + e.getMessage());
        out.flush();
        return 1;
      }
      Double py = null;
      String pyBackend = options.backend().equals("etcd") ? "etcd" : "etcd-v2";
      double[] pyElapsed = {0};
      if (options.pytorch()) {
        py = timePyTorch(out, options, endpoint, pyBackend, pyElapsed);
        if (py != null) {
          out.printf(
              Locale.ROOT,
              "pytorch %s nodes=%d seconds=%.3f%s%n",
              pyBackend,
              options.nodes(),
              py,
              options.backend().equals("etcd-v3")
                  ? " (PyTorch has no etcd-v3; its etcd-v2 is the nearest)"
                  : "");
        }
      }
      out.printf(
          Locale.ROOT, "rdzv %s nodes=%d seconds=%.3f%n", options.backend(), options.nodes(), java);
      if (py != null) {
        out.printf(
            Locale.ROOT,
            "ratio torch/rdzv=%.1f (%s)%n",
            py / java,
            py > java
                ? String.format(Locale.ROOT, "rdzv is %.1fx faster", py / java)
                : "PyTorch is faster");
      } else if (pyElapsed[0] > 0) {
        out.printf(
            Locale.ROOT,
            "ratio torch/rdzv>%.1f (PyTorch did not complete the round in %.0f s)%n",
            pyElapsed[0] / java,
            pyElapsed[0]);
      }
      out.printf(Locale.ROOT, "nodes=%d seconds=%.3f%n", options.nodes(), java);
      out.flush();
      return 0;
    } finally {
      RDZV_LOGS.setLevel(previousLevel);
      if (local != null) {
        local.close();
      }
    }
  }

  /**
   * {@code --curve} on an etcd backend: one round per size with {@code config}'s protocol, then (if
   * any) PyTorch's protocol at {@code pytorchSizes}, all Java nodes of this process. Each round
   * runs against an etcd started for it (empty, data on tmpfs), or under a fresh run id at {@code
   * etcdEndpoint} if one is given. Prints {@code curve protocol=P nodes=N seconds=S} with the write
   * transactions etcd applied for the round (revisions, {@code etcd_write_txns}; a batch of puts is
   * one), {@code curve protocol=P exponent=E} per protocol, and last {@code nodes=N seconds=S} of
   * the largest run of the first protocol. Returns whether every run succeeded.
   */
  public static boolean curve(
      PrintWriter out,
      String backend,
      String etcdEndpoint,
      List<Integer> sizes,
      List<Integer> pytorchSizes,
      Map<String, Object> config,
      Duration timeout) {
    java.util.logging.Level previousLevel = RDZV_LOGS.getLevel();
    RDZV_LOGS.setLevel(java.util.logging.Level.SEVERE);
    try {
      String protocol = org.rdzv.bench.rendezvous.RendezvousBench.protocolOf(config);
      out.println(
          "etcd "
              + (etcdEndpoint == null || etcdEndpoint.isBlank()
                  ? "started afresh for each round (data on tmpfs)"
                  : etcdEndpoint)
              + ", backend "
              + backend
              + ", min = max = N, after an untimed warm-up round (up to 1,000 nodes) on each etcd");
      out.flush();
      List<double[]> mine = new ArrayList<>();
      boolean ok = curveOf(out, backend, etcdEndpoint, protocol, sizes, config, timeout, mine);
      if (!pytorchSizes.isEmpty()) {
        ok &=
            curveOf(
                out,
                backend,
                etcdEndpoint,
                "pytorch",
                pytorchSizes,
                org.rdzv.bench.rendezvous.RendezvousBench.withPyTorchProtocol(config),
                timeout,
                new ArrayList<>());
      }
      if (!mine.isEmpty()) {
        double[] last = mine.get(mine.size() - 1);
        out.printf(Locale.ROOT, "nodes=%d seconds=%.3f%n", (long) last[0], last[1]);
      }
      out.flush();
      return ok;
    } finally {
      RDZV_LOGS.setLevel(previousLevel);
    }
  }

  private static boolean curveOf(
      PrintWriter out,
      String backend,
      String etcdEndpoint,
      String protocol,
      List<Integer> sizes,
      Map<String, Object> config,
      Duration timeout,
      List<double[]> points) {
    boolean ok = true;
    for (int n : sizes) {
      EtcdProcess local = null;
      try {
        String endpoint = etcdEndpoint;
        if (endpoint == null || endpoint.isBlank()) {
          local = startEtcd();
          endpoint = local.endpoint();
        }
        Options warm =
            new Options(
                backend,
                endpoint,
                org.rdzv.bench.rendezvous.RendezvousBench.warmUpNodes(n),
                timeout,
                false,
                null,
                config);
        timeJava(warm, endpoint);
        long before = revision(endpoint);
        double seconds =
            timeJava(new Options(backend, endpoint, n, timeout, false, null, config), endpoint);
        long after = revision(endpoint);
        out.printf(
            Locale.ROOT,
            "curve protocol=%s nodes=%d seconds=%.3f backend=%s%s%n",
            protocol,
            n,
            seconds,
            backend,
            before < 0 || after < 0
                ? ""
                : String.format(
                    Locale.ROOT,
                    " etcd_write_txns=%d write_txns_per_node=%.1f",
                    after - before,
                    (after - before) / (double) n));
        points.add(new double[] {n, seconds});
      } catch (RuntimeException e) {
        ok = false;
        out.printf(
            Locale.ROOT, "curve protocol=%s nodes=%d FAILED: %s%n", protocol, n, e.getMessage());
      } finally {
        out.flush();
        if (local != null) {
          local.close();
        }
      }
    }
    if (points.size() >= 2) {
      out.printf(
          Locale.ROOT,
          "curve protocol=%s exponent=%.2f%n",
          protocol,
          org.rdzv.bench.rendezvous.RendezvousBench.growthExponent(points));
    }
    return ok;
  }

  /**
   * etcd's current revision (the count of writes it applied), read through its JSON gateway, or -1
   * if it cannot be read (a TLS endpoint, an etcd before 3.4).
   */
  private static long revision(String endpoint) {
    String first = endpoint.split(",")[0].trim();
    String base = first.contains("://") ? first : "http://" + first;
    try {
      java.net.http.HttpResponse<String> response =
          java.net.http.HttpClient.newHttpClient()
              .send(
                  java.net.http.HttpRequest.newBuilder(java.net.URI.create(base + "/v3/kv/range"))
                      .timeout(Duration.ofSeconds(30))
                      .POST(java.net.http.HttpRequest.BodyPublishers.ofString("{\"key\":\"AA==\"}"))
                      .build(),
                  java.net.http.HttpResponse.BodyHandlers.ofString());
      JsonNode revision = JSON.readTree(response.body()).path("header").path("revision");
      return revision.isMissingNode() ? -1 : revision.asLong(-1);
    } catch (IOException | RuntimeException e) {
      return -1;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return -1;
    }
  }

  /** A throw-away etcd (v2 API on) on free loopback ports, stopped with this JVM at the latest. */
  private static EtcdProcess startEtcd() {
    if (Peers.etcdBinary() == null) {
      throw new IllegalStateException(
          "no etcd server binary found (install etcd-server, or pass --etcd-endpoint)");
    }
    EtcdProcess etcd;
    try {
      etcd = EtcdProcess.start();
    } catch (AssertionError e) {
      // The fixture reports a failed start as a test failure; here it is one line for the user.
      throw new IllegalStateException("cannot start etcd: " + e.getMessage(), e);
    }
    // A benchmark stopped by a signal must not leave an etcd (and its tmpfs data) behind.
    Runtime.getRuntime().addShutdownHook(new Thread(etcd::close, "rdzv-bench-etcd-stop"));
    return etcd;
  }

  private static Map<String, Object> config(
      String backend, Duration timeout, Map<String, Object> extra) {
    String seconds = Long.toString(Math.max(1, timeout.toSeconds()));
    Map<String, Object> config =
        new java.util.HashMap<>(
            backend.equals("etcd")
                ? Map.of("timeout", seconds, "last_call_timeout", "1")
                : Map.of("join_timeout", seconds, "last_call_timeout", "1"));
    config.putAll(extra);
    return config;
  }

  /**
   * Seconds for N Java nodes to complete a round: from the moment N threads start, each creating
   * its handler (through the registry, as a separate node would) and joining, until the last one
   * has its rank.
   */
  static double timeJava(Options options, String endpoint) {
    int n = options.nodes();
    String runId = "bench-java-" + options.backend() + "-" + System.nanoTime();
    RendezvousParameters params =
        new RendezvousParameters(
            options.backend(),
            endpoint,
            runId,
            n,
            n,
            config(options.backend(), options.timeout(), options.config()));
    List<RendezvousHandler> handlers = java.util.Collections.synchronizedList(new ArrayList<>(n));
    try {
      CountDownLatch done = new CountDownLatch(n);
      AtomicLong lastEnd = new AtomicLong();
      AtomicReference<Throwable> failure = new AtomicReference<>();
      List<Thread> threads = new ArrayList<>(n);
      long start = System.nanoTime();
      for (int i = 0; i < n; i++) {
        threads.add(
            Thread.ofVirtual()
                .start(
                    () -> {
                      try {
                        RendezvousHandler handler = RendezvousRegistry.handler(params);
                        handlers.add(handler);
                        handler.nextRendezvous();
                        lastEnd.accumulateAndGet(System.nanoTime(), Math::max);
                      } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                      } finally {
                        done.countDown();
                      }
                    }));
      }
      if (!done.await(options.timeout().toSeconds() + 30, TimeUnit.SECONDS)) {
        threads.forEach(Thread::interrupt);
        throw new IllegalStateException(
            "the Java nodes did not finish within " + options.timeout());
      }
      if (failure.get() != null) {
        Throwable t = failure.get();
        throw new IllegalStateException(t.getClass().getSimpleName() + ": " + t.getMessage(), t);
      }
      return (lastEnd.get() - start) / 1e9;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    } finally {
      synchronized (handlers) {
        for (RendezvousHandler handler : handlers) {
          release(handler);
        }
      }
    }
  }

  private static void release(RendezvousHandler handler) {
    handler.close(); // never throws; the legacy handler stops its TTL refreshes
  }

  /** Seconds for N PyTorch nodes, or null (with the reason printed) if they could not be timed. */
  static Double timePyTorch(
      PrintWriter out, Options options, String endpoint, String backend, double[] elapsed) {
    if (!Files.isExecutable(Path.of(options.python()))) {
      out.println("pytorch skipped: " + options.python() + " not found");
      return null;
    }
    Path script = null;
    ChildProcess process = null;
    try (InputStream in =
        EtcdRendezvousBenchmark.class.getResourceAsStream("pytorch_etcd_bench.py")) {
      script = Files.createTempFile("rdzv-etcd-bench-", ".py");
      Files.write(script, in.readAllBytes());
      String runId = "bench-pytorch-" + backend + "-" + System.nanoTime();
      process =
          ChildProcess.start(
              List.of(
                  options.python(),
                  script.toString(),
                  backend,
                  endpoint,
                  runId,
                  Integer.toString(options.nodes()),
                  Long.toString(options.timeout().toSeconds())),
              Map.of());
      if (!process.exited(options.timeout().plusSeconds(120))) {
        out.println(
            "pytorch "
                + backend
                + " did not finish within "
                + options.timeout().toSeconds()
                + " s");
        return null;
      }
      List<String> lines = process.lines();
      for (String line : lines) {
        if (line.startsWith("{\"nodes\"")) {
          JsonNode result = JSON.readTree(line);
          elapsed[0] = result.path("elapsed").asDouble(0);
          if (result.path("seconds").isNumber() && result.path("ok").asInt() == options.nodes()) {
            return result.path("seconds").asDouble();
          }
          out.println(
              "pytorch "
                  + backend
                  + " failed: "
                  + result.path("ok").asInt()
                  + " of "
                  + options.nodes()
                  + " nodes joined; "
                  + result.path("errors"));
          return null;
        }
      }
      out.println(
          "pytorch "
              + backend
              + " failed: "
              + (lines.isEmpty() ? "no output" : lines.get(lines.size() - 1)));
      return null;
    } catch (IOException | java.io.UncheckedIOException e) {
      out.println("pytorch skipped: " + e.getMessage());
      return null;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return null;
    } finally {
      if (process != null) {
        process.close();
      }
      if (script != null) {
        try {
          Files.deleteIfExists(script);
        } catch (IOException e) {
          // temporary file
        }
      }
    }
  }

  /**
   * Runs from the command line: {@code --backend B [--etcd-endpoint E] [--nodes N] [--no-pytorch]
   * [--timeout S]}.
   */
  public static void main(String[] args) {
    String backend = "etcd-v3";
    String endpoint = null;
    int nodes = 16;
    boolean pytorch = true;
    long timeout = 300;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--backend" -> backend = args[++i];
        case "--etcd-endpoint" -> endpoint = args[++i];
        case "--nodes" -> nodes = Integer.parseInt(args[++i]);
        case "--timeout" -> timeout = Long.parseLong(args[++i]);
        case "--no-pytorch" -> pytorch = false;
        default -> {
          System.err.println("unknown option " + args[i]);
          System.exit(2);
        }
      }
    }
    System.exit(
        run(
            System.out,
            new Options(backend, endpoint, nodes, Duration.ofSeconds(timeout), pytorch, null)));
  }
}
