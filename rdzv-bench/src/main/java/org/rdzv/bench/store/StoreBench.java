package org.rdzv.bench.store;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import org.rdzv.store.StoreProtocol;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreOptions;
import org.rdzv.testing.FreePort;

/**
 * {@code rdzv bench store}: our TCPStore server against PyTorch 1.13's, measured in the same run
 * with the same clients, plus single-client latency against the loopback floor and a connection
 * storm; and against PyTorch 2.6's server with real PyTorch 2.6 clients. Prints figures and ratios;
 * returns 0, or 1 if a counter lost an update.
 *
 * <p>Every participant runs in a process of its own: our server (with a bare echo server) in one
 * JVM, PyTorch's server in a Python process, each load client in its own JVM speaking the 1.13
 * protocol (the only one both servers understand), the storm clients in one more JVM. The 2.6 part:
 * 2.6's server (its legacy backend: Debian's 2.6 has no libuv) in a Python process of the 2.6 peer,
 * and each load client a Python process of the 2.6 peer with PyTorch's own TCPStore client (2.x
 * protocol), the same processes for both servers.
 */
public final class StoreBench {

  /**
   * What to run.
   *
   * @param clients the client-process counts P of the throughput runs
   * @param duration how long each throughput run measures, after warm-up
   * @param stormClients C of the connection storm (0 skips it)
   * @param latencyIterations round trips measured by the latency run
   * @param pytorch whether to compare against PyTorch 1.13's server
   * @param python the interpreter that imports PyTorch 1.13
   * @param jvmOptions extra options for the child JVMs
   * @param torch2 the command that starts PyTorch 2.6's interpreter (e.g. {@code
   *     [/opt/torch2-peer/enter, python3]}), or empty to skip the 2.6 comparison
   */
  public record Options(
      List<Integer> clients,
      Duration duration,
      int stormClients,
      int latencyIterations,
      boolean pytorch,
      String python,
      List<String> jvmOptions,
      List<String> torch2) {
    public static final Options DEFAULT =
        new Options(
            List.of(1, 4, 16),
            Duration.ofSeconds(3),
            10_000,
            20_000,
            true,
            "/usr/bin/python3",
            List.of(),
            List.of());

    /** Without the 2.6 comparison. */
    public Options(
        List<Integer> clients,
        Duration duration,
        int stormClients,
        int latencyIterations,
        boolean pytorch,
        String python,
        List<String> jvmOptions) {
      this(
          clients,
          duration,
          stormClients,
          latencyIterations,
          pytorch,
          python,
          jvmOptions,
          List.of());
    }

    public Options {
      clients = List.copyOf(clients);
      Objects.requireNonNull(duration, "duration");
      Objects.requireNonNull(python, "python");
      jvmOptions = List.copyOf(jvmOptions);
      torch2 = List.copyOf(torch2);
      if (clients.isEmpty() || clients.stream().anyMatch(p -> p < 1)) {
        throw new IllegalArgumentException("client counts must be positive: " + clients);
      }
      if (stormClients < 0 || latencyIterations < 1) {
        throw new IllegalArgumentException(
            "storm clients must be >= 0 and latency iterations >= 1");
      }
    }
  }

  private static final Duration START = Duration.ofSeconds(120);
  private static final int REPEATS = 3;
  private static final String PYTORCH_SERVER =
      String.join(
          "\n",
          "import sys",
          "from datetime import timedelta",
          "import torch",
          "import torch.distributed as dist",
          "store = dist.TCPStore('127.0.0.1', int(sys.argv[1]), None, True, timedelta(seconds=60), False)",
          "print('READY', torch.__version__, flush=True)",
          "sys.stdin.read()");

  /**
   * One PyTorch load client: connects to every {@code name=port} target with PyTorch's own TCPStore
   * client, then per {@code GO name} line warms up and runs the load for the duration against that
   * target and prints {@code RESULT name ops adds nanos}.
   */
  private static final String PYTORCH_LOAD =
      String.join(
          "\n",
          "import sys, time",
          "from datetime import timedelta",
          "import torch.distributed as dist",
          "i, seconds, warm, counter = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]),"
              + " sys.argv[4]",
          "stores = {}",
          "for t in sys.argv[5:]:",
          "    name, port = t.split('=')",
          "    stores[name] = dist.TCPStore('127.0.0.1', int(port), None, False,"
              + " timedelta(seconds=60))",
          "key, value = 'bench/py/' + i, b'x' * 32",
          "print('READY', flush=True)",
          "for line in sys.stdin:",
          "    cmd = line.split()",
          "    if len(cmd) != 2 or cmd[0] != 'GO':",
          "        break",
          "    s = stores[cmd[1]]",
          "    end = time.monotonic() + warm",
          "    while time.monotonic() < end:",
          "        s.set(key, value); s.get(key); s.add(counter + '/warm', 1)",
          "    ops = adds = 0",
          "    t0 = time.monotonic_ns(); end = t0 + int(seconds * 1e9)",
          "    while time.monotonic_ns() < end:",
          "        s.set(key, value); s.get(key); s.add(counter, 1)",
          "        ops += 3; adds += 1",
          "    print('RESULT', cmd[1], ops, adds, time.monotonic_ns() - t0, flush=True)");

  private StoreBench() {}

  /** Runs the benchmark, printing to {@code out}. */
  public static int run(PrintStream out, Options options) {
    List<Participant> children = new ArrayList<>();
    boolean lost = false;
    try {
      Participant servers =
          track(children, Participant.java("servers", options.jvmOptions(), "servers"));
      String ports = servers.takePrefix("PORTS ", START);
      int storePort = Integer.parseInt(ports.replaceAll(".*store=(\\d+).*", "$1"));
      int echoPort = Integer.parseInt(ports.replaceAll(".*echo=(\\d+).*", "$1"));

      int torchPort = -1;
      String torchVersion = null;
      Participant torch = null;
      if (options.pytorch()) {
        String why = pytorchUnavailable(options.python());
        if (why != null) {
          out.println("PyTorch comparison skipped: " + why);
        } else {
          torchPort = FreePort.next();
          torch =
              track(
                  children,
                  Participant.start(
                      "pytorch-server",
                      List.of(
                          options.python(),
                          "-u",
                          "-c",
                          PYTORCH_SERVER,
                          Integer.toString(torchPort))));
          torchVersion = torch.takePrefix("READY", START).substring(5).strip();
        }
      }
      boolean withTorch = torchPort > 0;

      out.println("rdzv bench store");
      out.println(
          "servers: rdzv TcpStoreServer (Java NIO, one event-loop thread)"
              + (withTorch
                  ? " vs PyTorch " + torchVersion + " c10d::TCPStore server (python3-torch)"
                  : ""));
      out.println(
          "clients: rdzv's Java TcpStore client speaking the 1.13 protocol, one JVM process per client,"
              + " the same processes for both servers");
      out.println(
          "load: per iteration set(key, 32 B), get(key) [WAIT+GET], add(counter, 1); "
              + options.duration().toMillis()
              + " ms per run after 1.5 s warm-up, servers alternated, best of "
              + REPEATS
              + " runs each; latencies per operation; counters verified at the end");
      out.println();
      out.printf(
          Locale.ROOT,
          "%4s  %-8s %12s %9s %9s  %s%n",
          "P",
          "server",
          "ops/s",
          "p50 µs",
          "p99 µs",
          "counter check");

      List<String> summary = new ArrayList<>();
      for (int round = 0; round < options.clients().size(); round++) {
        int p = options.clients().get(round);
        String counter = "bench/counter/" + p;
        List<String> targets = new ArrayList<>();
        targets.add("rdzv=" + storePort);
        if (withTorch) {
          targets.add("pytorch=" + torchPort);
        }
        if (round % 2 == 1) {
          java.util.Collections.reverse(targets);
        }
        List<Participant> loads = new ArrayList<>();
        for (int i = 0; i < p; i++) {
          List<String> args =
              new ArrayList<>(
                  List.of(
                      "load",
                      Integer.toString(i),
                      "1.13",
                      Double.toString(options.duration().toMillis() / 1000.0),
                      "1.5",
                      counter));
          args.addAll(targets);
          loads.add(
              track(
                  children,
                  Participant.java("load-" + i, clientJvm(options), args.toArray(String[]::new))));
        }
        for (Participant c : loads) {
          c.takePrefix("READY", START);
        }
        // Alternate the servers, REPEATS runs each, and keep each server's best run: the machine
        // is shared, and noise should not decide the comparison.
        double rdzvOps = 0;
        double torchOps = 0;
        java.util.Map<String, double[]> best = new java.util.LinkedHashMap<>();
        java.util.Map<String, Long> sent = new java.util.HashMap<>();
        for (int rep = 0; rep < REPEATS; rep++) {
          for (String target : targets) {
            String name = target.substring(0, target.indexOf('='));
            for (Participant c : loads) {
              c.send("GO " + name);
            }
            Histogram all = new Histogram();
            long ops = 0;
            long adds = 0;
            double seconds = 0;
            for (Participant c : loads) {
              String line = c.takePrefix("RESULT " + name + " ", START.plus(options.duration()));
              String[] r = line.split(" ");
              ops += Long.parseLong(r[2]);
              adds += Long.parseLong(r[3]);
              seconds = Math.max(seconds, Long.parseLong(r[4]) / 1e9);
              all.add(Histogram.decode(r[5]));
            }
            sent.put(name, adds);
            double rate = ops / seconds;
            double[] b = best.get(name);
            if (b == null || rate > b[0]) {
              best.put(name, new double[] {rate, all.percentile(0.5), all.percentile(0.99)});
            }
          }
        }
        for (String target : targets) {
          String name = target.substring(0, target.indexOf('='));
          int port = Integer.parseInt(target.substring(target.indexOf('=') + 1));
          long stored;
          try (TcpStore check =
              TcpStore.connect(
                  TcpStoreOptions.builder("127.0.0.1", port)
                      .protocol(StoreProtocol.V1_13)
                      .build())) {
            stored = check.add(counter, 0);
          }
          long adds = sent.get(name);
          boolean exact = stored == adds;
          lost |= !exact;
          double[] b = best.get(name);
          if (name.equals("rdzv")) {
            rdzvOps = b[0];
          } else {
            torchOps = b[0];
          }
          out.printf(
              Locale.ROOT,
              "%4d  %-8s %12.0f %9.1f %9.1f  %s%n",
              p,
              name,
              b[0],
              b[1],
              b[2],
              exact ? "exact (" + stored + " adds)" : "LOST: stored " + stored + ", sent " + adds);
        }
        for (Participant c : loads) {
          c.close();
          children.remove(c);
        }
        if (withTorch) {
          String line =
              String.format(
                  Locale.ROOT,
                  "P=%d: rdzv/pytorch ops/s = %.3fx (target >= 1)%s",
                  p,
                  rdzvOps / torchOps,
                  rdzvOps >= torchOps ? "" : "  BELOW TARGET");
          out.println("      " + line);
          summary.add(line);
        }
      }

      out.println();
      List<Participant> serverProcesses = new ArrayList<>(List.of(servers));
      if (torch != null) {
        serverProcesses.add(torch);
      }
      latency(out, options, children, summary, serverProcesses, echoPort, storePort, torchPort);

      if (!options.torch2().isEmpty()) {
        out.println();
        lost |= torch2Clients(out, options, children, summary, storePort);
      }

      if (options.stormClients() > 0) {
        out.println();
        out.println(
            "connection storm: "
                + options.stormClients()
                + " clients (virtual threads in one separate JVM) connect, handshake and add at once;"
                + " then each connection serves a second add while all are open:");
        List<String[]> storms = new ArrayList<>();
        storms.add(new String[] {"rdzv", "2", Integer.toString(storePort)});
        storms.add(new String[] {"rdzv", "1.13", Integer.toString(storePort)});
        if (withTorch) {
          storms.add(new String[] {"pytorch", "1.13", Integer.toString(torchPort)});
        }
        for (String[] s : storms) {
          Participant storm =
              track(
                  children,
                  Participant.java(
                      "storm",
                      stormJvm(options),
                      "storm",
                      Integer.toString(options.stormClients()),
                      s[1],
                      s[2]));
          String[] r;
          try {
            r = storm.takePrefix("STORM ", Duration.ofSeconds(180)).split(" ");
          } catch (IllegalStateException e) {
            out.printf(
                Locale.ROOT, "  %-8s protocol %-5s failed: %s%n", s[0], s[1], e.getMessage());
            continue;
          } finally {
            storm.close();
            children.remove(storm);
          }
          double seconds = Double.parseDouble(r[1]);
          boolean held = Boolean.parseBoolean(r[3]);
          String line =
              String.format(
                  Locale.ROOT,
                  "%-8s protocol %-5s all %d served in %.2f s (all connected after %.2f s)%s;"
                      + " all held open and served again: %s%s",
                  s[0],
                  s[1],
                  options.stormClients(),
                  seconds,
                  Double.parseDouble(r[6]),
                  s[0].equals("rdzv")
                      ? (seconds <= 3 ? " (target <= 3 s)" : " (target <= 3 s: MISSED)")
                      : "",
                  held ? "yes" : "NO (" + r[4] + " failed: " + r[5] + ")",
                  "");
          out.println("  " + line);
          if (s[0].equals("rdzv")) {
            summary.add("storm " + line);
          }
        }
      }
      out.println();
      out.println("summary:");
      for (String s : summary) {
        out.println("  " + s);
      }
      return lost ? 1 : 0;
    } finally {
      for (Participant c : children) {
        c.close();
      }
    }
  }

  /**
   * The single-client latency runs. Where taskset can pin processes, they run twice: client and
   * servers on one CPU, then on two different CPUs; unpinned, the scheduler picks one of the two
   * per process pair (see {@link Affinity}), which makes a comparison of servers a coin toss.
   */
  private static void latency(
      PrintStream out,
      Options options,
      List<Participant> children,
      List<String> summary,
      List<Participant> serverProcesses,
      int echoPort,
      int storePort,
      int torchPort) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "latency",
                Integer.toString(options.latencyIterations()),
                Integer.toString(echoPort),
                "rdzv=" + storePort));
    if (torchPort > 0) {
      args.add("pytorch=" + torchPort);
    }
    out.println(
        "single client, one request at a time (add = one round trip), "
            + options.latencyIterations()
            + " round trips each, interleaved:");
    List<Integer> cpus = Affinity.twoCpus();
    if (cpus.isEmpty()) {
      out.println("  (unpinned: taskset or a second CPU is missing; the CPU placement may decide)");
      latencyRun(out, options, children, summary, args, List.of(), "");
      return;
    }
    List<String> saved = new ArrayList<>();
    for (Participant c : serverProcesses) {
      saved.add(Affinity.allowed(c.pid()));
    }
    try {
      int[][] placements = {{cpus.get(0), cpus.get(0)}, {cpus.get(0), cpus.get(1)}};
      for (int[] placement : placements) {
        try {
          for (Participant c : serverProcesses) {
            Affinity.pin(c.pid(), Integer.toString(placement[1]));
          }
        } catch (IllegalStateException e) {
          out.println("  (unpinned: " + e.getMessage() + "; the CPU placement may decide)");
          latencyRun(out, options, children, summary, args, List.of(), "");
          return;
        }
        String where =
            placement[0] == placement[1]
                ? "client and servers on CPU " + placement[0]
                : "client on CPU " + placement[0] + ", servers on CPU " + placement[1];
        out.println("  " + where + ":");
        latencyRun(
            out, options, children, summary, args, Affinity.launcher(placement[0]), where + ": ");
      }
    } finally {
      for (int i = 0; i < serverProcesses.size(); i++) {
        if (!saved.get(i).isEmpty()) {
          try {
            Affinity.pin(serverProcesses.get(i).pid(), saved.get(i));
          } catch (IllegalStateException e) {
            out.println("  (could not restore the CPU set of a server: " + e.getMessage() + ")");
          }
        }
      }
    }
  }

  private static void latencyRun(
      PrintStream out,
      Options options,
      List<Participant> children,
      List<String> summary,
      List<String> args,
      List<String> launcher,
      String label) {
    Participant latency =
        track(
            children,
            Participant.java("latency", launcher, clientJvm(options), args.toArray(String[]::new)));
    double echoP50 = 0;
    double rdzvP50 = 0;
    String indent = launcher.isEmpty() ? "  " : "    ";
    for (int i = 0; i < args.size() - 2; i++) {
      String[] l = latency.takePrefix("LATENCY ", START).split(" ");
      double p50 = Double.parseDouble(l[2]);
      String what =
          switch (l[1]) {
            case "echo" -> "loopback echo (bare Java server, " + BenchProcess.ECHO_BYTES + " B)";
            case "rdzv" -> "rdzv add";
            default -> "pytorch add";
          };
      out.printf(
          Locale.ROOT,
          "%s%-42s p50 %7.1f µs   p99 %7.1f µs%n",
          indent,
          what,
          p50,
          Double.parseDouble(l[3]));
      if (l[1].equals("echo")) {
        echoP50 = p50;
      } else if (l[1].equals("rdzv")) {
        rdzvP50 = p50;
      }
    }
    String line =
        String.format(
            Locale.ROOT,
            "%srdzv p50 / loopback p50 = %.2fx (target <= 1.5x)%s",
            label,
            rdzvP50 / echoP50,
            rdzvP50 / echoP50 <= 1.5 ? "" : "  ABOVE TARGET");
    out.println(indent + line.substring(label.length()));
    summary.add(line);
    latency.close();
    children.remove(latency);
  }

  /**
   * Our server against PyTorch 2.6's, both loaded by the same PyTorch 2.6 client processes (2.x
   * protocol); returns whether a counter lost an update.
   */
  private static boolean torch2Clients(
      PrintStream out,
      Options options,
      List<Participant> children,
      List<String> summary,
      int storePort) {
    int torchPort = FreePort.next();
    List<String> server = new ArrayList<>(options.torch2());
    server.addAll(List.of("-u", "-c", PYTORCH_SERVER, Integer.toString(torchPort)));
    Participant torch;
    String version;
    try {
      torch = track(children, Participant.start("pytorch-2.6-server", server));
      version = torch.takePrefix("READY", START).substring(5).strip();
    } catch (IllegalStateException e) {
      out.println("PyTorch 2.6 comparison skipped: " + e.getMessage());
      return false;
    }
    out.println(
        "PyTorch "
            + version
            + " clients (PyTorch's own TCPStore client, 2.x protocol, one Python process each, the"
            + " same processes for both servers): rdzv TcpStoreServer vs PyTorch "
            + version
            + "'s server (its legacy backend); same load, best of "
            + REPEATS
            + " runs each");
    out.printf(Locale.ROOT, "%4s  %-12s %12s  %s%n", "P", "server", "ops/s", "counter check");
    boolean lost = false;
    for (int round = 0; round < options.clients().size(); round++) {
      int p = options.clients().get(round);
      String counter = "bench/py-counter/" + p;
      List<String> targets = new ArrayList<>(List.of("rdzv=" + storePort, "pytorch=" + torchPort));
      if (round % 2 == 1) {
        java.util.Collections.reverse(targets);
      }
      List<Participant> loads = new ArrayList<>();
      for (int i = 0; i < p; i++) {
        List<String> command = new ArrayList<>(options.torch2());
        command.addAll(
            List.of(
                "-u",
                "-c",
                PYTORCH_LOAD,
                Integer.toString(i),
                Double.toString(options.duration().toMillis() / 1000.0),
                "1.5",
                counter));
        command.addAll(targets);
        loads.add(track(children, Participant.start("pytorch-load-" + i, command)));
      }
      for (Participant c : loads) {
        c.takePrefix("READY", START);
      }
      java.util.Map<String, Double> best = new java.util.LinkedHashMap<>();
      java.util.Map<String, Long> sent = new java.util.HashMap<>();
      for (int rep = 0; rep < REPEATS; rep++) {
        for (String target : targets) {
          String name = target.substring(0, target.indexOf('='));
          for (Participant c : loads) {
            c.send("GO " + name);
          }
          long ops = 0;
          long adds = 0;
          double seconds = 0;
          for (Participant c : loads) {
            String[] r =
                c.takePrefix("RESULT " + name + " ", START.plus(options.duration())).split(" ");
            ops += Long.parseLong(r[2]);
            adds += Long.parseLong(r[3]);
            seconds = Math.max(seconds, Long.parseLong(r[4]) / 1e9);
          }
          sent.merge(name, adds, Long::sum);
          best.merge(name, ops / seconds, Math::max);
        }
      }
      for (Participant c : loads) {
        c.close();
        children.remove(c);
      }
      for (String target : targets) {
        String name = target.substring(0, target.indexOf('='));
        int port = Integer.parseInt(target.substring(target.indexOf('=') + 1));
        long stored;
        try (TcpStore check = TcpStore.connect("127.0.0.1", port)) {
          stored = check.add(counter, 0);
        }
        boolean exact = stored == sent.get(name);
        lost |= !exact;
        out.printf(
            Locale.ROOT,
            "%4d  %-12s %12.0f  %s%n",
            p,
            name.equals("rdzv") ? "rdzv" : "pytorch-2.6",
            best.get(name),
            exact
                ? "exact (" + stored + " adds)"
                : "LOST: stored " + stored + ", sent " + sent.get(name));
      }
      double ratio = best.get("rdzv") / best.get("pytorch");
      String line =
          String.format(
              Locale.ROOT,
              "P=%d, PyTorch %s clients: rdzv/pytorch-%s ops/s = %.3fx (target >= 1)%s",
              p,
              version,
              version.replaceAll("^(\\d+\\.\\d+).*", "$1"),
              ratio,
              ratio >= 1 ? "" : "  BELOW TARGET");
      out.println("      " + line);
      summary.add(line);
    }
    torch.close();
    children.remove(torch);
    return lost;
  }

  private static Participant track(List<Participant> children, Participant child) {
    children.add(child);
    return child;
  }

  private static List<String> clientJvm(Options options) {
    List<String> jvm = new ArrayList<>(List.of("-Xmx64m", "-Xss512k"));
    jvm.addAll(options.jvmOptions());
    return jvm;
  }

  private static List<String> stormJvm(Options options) {
    List<String> jvm = new ArrayList<>(List.of("-Xmx1g"));
    jvm.addAll(options.jvmOptions());
    return jvm;
  }

  /** Why PyTorch cannot be compared, or null if it can. */
  private static String pytorchUnavailable(String python) {
    if (!Files.isExecutable(Path.of(python))) {
      return python + " not found";
    }
    try {
      Process p =
          new ProcessBuilder(python, "-c", "import torch.distributed")
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .start();
      if (!p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS) || p.exitValue() != 0) {
        p.destroyForcibly();
        return python + " cannot import torch.distributed";
      }
      return null;
    } catch (IOException e) {
      return e.getMessage();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "interrupted";
    }
  }
}
