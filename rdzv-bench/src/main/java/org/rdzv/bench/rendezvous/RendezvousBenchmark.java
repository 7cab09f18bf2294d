package org.rdzv.bench.rendezvous;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.testing.ChildProcess;

/**
 * {@code rdzv bench rendezvous}: N nodes in one process join one round ({@code min = max = N})
 * against a store embedded in this JVM; the time spans creating the handlers and every {@code
 * nextRendezvous()} returning. The PyTorch side runs N torch nodes (1.13 or 2.x) as threads of one
 * Python process against the same kind of store, so both pay the same costs.
 */
public final class RendezvousBenchmark {
  private RendezvousBenchmark() {}

  /**
   * One measured run.
   *
   * @param implementation {@code rdzv}, {@code torch-1.13} or {@code torch-2.6}
   * @param nodes the number of nodes
   * @param elapsed from the first handler's creation to the last node's return
   * @param ok whether every node got a distinct rank in a world of {@code nodes}
   * @param detail what went wrong when not {@code ok}
   */
  public record Result(
      String implementation, int nodes, Duration elapsed, boolean ok, String detail) {
    public double seconds() {
      return elapsed.toNanos() / 1e9;
    }
  }

  /**
   * Runs N Java nodes of {@code backend} (only {@code c10d} here; other modules may add theirs)
   * against an embedded TCP store server.
   *
   * @param config extra rendezvous config, e.g. {@code store_protocol}
   */
  public static Result runJava(int nodes, Duration timeout, Map<String, Object> config) {
    try (TcpStoreServer server = TcpStoreServer.start("", 0)) {
      return runJava("c10d", "127.0.0.1:" + server.port(), nodes, timeout, config);
    }
  }

  /**
   * What the embedded store server did during one run: requests received, bytes in and out, keys
   * and data bytes held at the end.
   */
  public record StoreFigures(
      long requests, long bytesIn, long bytesOut, long keys, long dataBytes) {
    @Override
    public String toString() {
      return String.format(
          java.util.Locale.ROOT,
          "store_requests=%d store_bytes_in=%d store_bytes_out=%d store_keys=%d store_data_bytes=%d",
          requests,
          bytesIn,
          bytesOut,
          keys,
          dataBytes);
    }
  }

  /** A run and what the store did for it. */
  public record Measured(Result result, StoreFigures store) {}

  /** As {@link #runJava(int, Duration, Map)}, reading the embedded server's meters afterwards. */
  public static Measured runJavaMeasured(int nodes, Duration timeout, Map<String, Object> config) {
    io.micrometer.core.instrument.simple.SimpleMeterRegistry meters =
        new io.micrometer.core.instrument.simple.SimpleMeterRegistry();
    try (TcpStoreServer server =
        TcpStoreServer.start(
            org.rdzv.store.TcpStoreServerOptions.builder()
                .host("")
                .port(0)
                .meterRegistry(meters)
                .build())) {
      Result r = runJava("c10d", "127.0.0.1:" + server.port(), nodes, timeout, config);
      long requests =
          (long)
              meters.find("rdzv.store.requests").counters().stream()
                  .mapToDouble(io.micrometer.core.instrument.Counter::count)
                  .sum();
      long in = (long) meters.get("rdzv.store.received").counter().count();
      long out = (long) meters.get("rdzv.store.sent").counter().count();
      var data = meters.find("rdzv.store.memory.held").tag("kind", "data").gauge();
      return new Measured(
          r,
          new StoreFigures(
              requests, in, out, server.numKeys(), data == null ? -1 : (long) data.value()));
    }
  }

  /** Runs N Java nodes of any registered backend against {@code endpoint}. */
  public static Result runJava(
      String backend, String endpoint, int nodes, Duration timeout, Map<String, Object> config) {
    String runId = "bench-" + UUID.randomUUID();
    Map<String, Object> conf = new HashMap<>();
    conf.put("is_host", "false");
    conf.put("last_call_timeout", "1");
    conf.put("join_timeout", Long.toString(Math.max(1, timeout.toSeconds())));
    conf.putAll(config);
    List<RendezvousHandler> handlers = new ArrayList<>();
    ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
    long start = System.nanoTime();
    try {
      List<Future<RendezvousHandler>> created = new ArrayList<>();
      for (int i = 0; i < nodes; i++) {
        created.add(
            pool.submit(
                () ->
                    RendezvousRegistry.handler(
                        new RendezvousParameters(
                            backend, endpoint, runId, nodes, nodes, null, conf))));
      }
      for (Future<RendezvousHandler> f : created) {
        handlers.add(f.get(timeout.toNanos(), TimeUnit.NANOSECONDS));
      }
      List<Future<RendezvousInfo>> joins = new ArrayList<>();
      for (RendezvousHandler h : handlers) {
        joins.add(pool.submit(h::nextRendezvous));
      }
      boolean[] seen = new boolean[nodes];
      String detail = "";
      boolean ok = true;
      for (Future<RendezvousInfo> f : joins) {
        long left = timeout.toNanos() - (System.nanoTime() - start);
        RendezvousInfo info = f.get(Math.max(left, 1), TimeUnit.NANOSECONDS);
        if (info.worldSize() != nodes || seen[info.rank()]) {
          ok = false;
          detail = "rank " + info.rank() + " of world " + info.worldSize();
        }
        seen[info.rank()] = true;
      }
      Duration elapsed = Duration.ofNanos(System.nanoTime() - start);
      return new Result("rdzv", nodes, elapsed, ok, detail);
    } catch (ExecutionException e) {
      return new Result(
          "rdzv",
          nodes,
          Duration.ofNanos(System.nanoTime() - start),
          false,
          String.valueOf(e.getCause()));
    } catch (TimeoutException e) {
      return new Result(
          "rdzv", nodes, timeout, false, "did not finish within " + timeout.toSeconds() + " s");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return new Result(
          "rdzv", nodes, Duration.ofNanos(System.nanoTime() - start), false, "interrupted");
    } finally {
      pool.shutdownNow();
      handlers.forEach(RendezvousHandler::close);
    }
  }

  private static final Pattern TORCH_RESULT =
      Pattern.compile("\"seconds\": ([0-9.eE+-]+), \"ok\": (true|false), \"detail\": \"(.*)\"");

  /**
   * Runs N torch 1.13 nodes (threads of one {@code python} process) against an embedded TCP store
   * server, the same kind of store as {@link #runJava(int, Duration, Map)}.
   */
  public static Result runTorch(int nodes, Duration timeout, String python) {
    return runTorch("torch-1.13", List.of(python), nodes, timeout);
  }

  /**
   * Runs N torch nodes (threads of one Python process started by {@code python}, e.g. {@code
   * [/opt/torch2-peer/enter, python3]} for 2.6) against an embedded TCP store server. The time is
   * measured inside Python, from the handlers' creation: the interpreter's start does not count.
   *
   * @param label the implementation's name in the result, e.g. {@code torch-2.6}
   */
  public static Result runTorch(String label, List<String> python, int nodes, Duration timeout) {
    try (TcpStoreServer server = TcpStoreServer.start("", 0)) {
      Path script = Files.createTempFile("rdzv-bench-torch-", ".py");
      try (InputStream in = RendezvousBenchmark.class.getResourceAsStream("torch_nodes.py")) {
        Files.write(script, in.readAllBytes());
      }
      String text;
      int exit;
      List<String> command = new ArrayList<>(python);
      command.addAll(
          List.of(
              script.toString(),
              "127.0.0.1:" + server.port(),
              "bench-" + UUID.randomUUID(),
              Integer.toString(nodes),
              Long.toString(Math.max(1, timeout.toSeconds()))));
      try (ChildProcess p = ChildProcess.start(command, Map.of())) {
        if (!p.exited(timeout.plusSeconds(30))) {
          return new Result(
              label, nodes, timeout, false, "did not finish within " + timeout.toSeconds() + " s");
        }
        text = p.output();
        exit = p.process().exitValue();
      } finally {
        Files.deleteIfExists(script);
      }
      Matcher m = TORCH_RESULT.matcher(text);
      if (!m.find()) {
        String tail = text.length() > 300 ? text.substring(text.length() - 300) : text;
        return new Result(
            label,
            nodes,
            Duration.ZERO,
            false,
            "python exited with " + exit + ": " + tail.strip().replaceAll("\\s*\\R\\s*", " | "));
      }
      Duration elapsed = Duration.ofNanos((long) (Double.parseDouble(m.group(1)) * 1e9));
      return new Result(label, nodes, elapsed, Boolean.parseBoolean(m.group(2)), m.group(3));
    } catch (IOException e) {
      throw new UncheckedIOException("cannot run " + String.join(" ", python), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return new Result(label, nodes, Duration.ZERO, false, "interrupted");
    }
  }
}
