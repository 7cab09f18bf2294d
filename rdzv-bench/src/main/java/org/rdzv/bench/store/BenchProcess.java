package org.rdzv.bench.store;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.rdzv.store.StoreProtocol;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreOptions;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.store.TcpStoreServerOptions;

/**
 * The processes of {@code rdzv bench store}, one role each, talking to {@link StoreBench} over
 * stdin/stdout lines. Not an API.
 *
 * <ul>
 *   <li>{@code servers}: our TCPStore server and a bare echo server; prints {@code PORTS store=P
 *       echo=Q}; runs until stdin closes.
 *   <li>{@code load ID PROTOCOL SECONDS WARMUP COUNTER NAME=PORT...}: for each target, warms up,
 *       prints {@code READY NAME}, waits for {@code GO NAME}, runs the set/get/add mix for SECONDS
 *       and prints {@code RESULT NAME OPS ADDS HISTOGRAM}.
 *   <li>{@code latency ITERATIONS ECHO_PORT NAME=PORT...}: single-client latency of an echo round
 *       trip and of ADD against each target; prints {@code LATENCY NAME P50 P99}.
 *   <li>{@code storm CLIENTS PROTOCOL PORT}: CLIENTS clients connect, handshake and ADD at once;
 *       prints {@code STORM SECONDS COUNTER SECOND_ROUND_OK}.
 * </ul>
 */
public final class BenchProcess {
  /** The size of an ADD of a short key, used for the echo round trip. */
  static final int ECHO_BYTES = 27;

  private BenchProcess() {}

  public static void main(String[] args)
      throws IOException, InterruptedException, java.util.concurrent.ExecutionException {
    switch (args[0]) {
      case "servers" -> servers();
      case "load" -> load(args);
      case "latency" -> latency(args);
      case "storm" -> storm(args);
      default -> throw new IllegalArgumentException("unknown role " + args[0]);
    }
    System.out.flush();
    System.exit(0);
  }

  private static BufferedReader stdin() {
    return new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
  }

  private static void say(String line) {
    System.out.println(line);
    System.out.flush();
  }

  // ---------------------------------------------------------------- servers

  private static void servers() throws IOException {
    try (TcpStoreServer store =
            TcpStoreServer.start(
                TcpStoreServerOptions.builder().host("127.0.0.1").port(0).build());
        ServerSocket echo = new ServerSocket(0, 4096, InetAddress.getLoopbackAddress())) {
      Thread.ofPlatform().daemon().name("echo-accept").start(() -> echoLoop(echo));
      say("PORTS store=" + store.port() + " echo=" + echo.getLocalPort());
      BufferedReader in = stdin();
      String line;
      while ((line = in.readLine()) != null && !line.equals("quit")) {
        if (line.equals("connections")) {
          say("CONNECTIONS " + store.connectionCount());
        }
      }
    }
  }

  private static void echoLoop(ServerSocket echo) {
    while (true) {
      Socket s;
      try {
        s = echo.accept();
        s.setTcpNoDelay(true);
      } catch (IOException e) {
        return;
      }
      Thread.ofPlatform()
          .daemon()
          .start(
              () -> {
                byte[] buf = new byte[4096];
                try (s;
                    InputStream in = s.getInputStream();
                    OutputStream out = s.getOutputStream()) {
                  int n;
                  while ((n = in.read(buf)) > 0) {
                    out.write(buf, 0, n);
                  }
                } catch (IOException e) {
                  // client gone
                }
              });
    }
  }

  // ---------------------------------------------------------------- load

  private static TcpStore connect(int port, StoreProtocol protocol) {
    return TcpStore.connect(
        TcpStoreOptions.builder("127.0.0.1", port)
            .protocol(protocol)
            .timeout(Duration.ofSeconds(60))
            .build());
  }

  private static void load(String[] args) throws IOException {
    int id = Integer.parseInt(args[1]);
    StoreProtocol protocol = StoreProtocol.parse(args[2]);
    long nanos = (long) (Double.parseDouble(args[3]) * 1e9);
    long warmupNanos = (long) (Double.parseDouble(args[4]) * 1e9);
    String counter = args[5];
    List<String> names = new ArrayList<>();
    List<TcpStore> stores = new ArrayList<>();
    for (int t = 6; t < args.length; t++) {
      names.add(args[t].substring(0, args[t].indexOf('=')));
      stores.add(connect(Integer.parseInt(args[t].substring(args[t].indexOf('=') + 1)), protocol));
    }
    String[] keys = new String[64];
    for (int i = 0; i < keys.length; i++) {
      keys[i] = "bench/" + id + "/" + i;
    }
    byte[] value = new byte[32];
    long[] adds = new long[stores.size()];
    try {
      for (int s = 0; s < stores.size(); s++) {
        adds[s] += mix(stores.get(s), keys, value, counter, warmupNanos, null)[1];
      }
      say("READY");
      BufferedReader in = stdin();
      String line;
      while ((line = in.readLine()) != null && line.startsWith("GO ")) {
        int s = names.indexOf(line.substring(3));
        Histogram h = new Histogram();
        long[] r = mix(stores.get(s), keys, value, counter, nanos, h);
        adds[s] += r[1];
        say("RESULT " + names.get(s) + " " + r[0] + " " + adds[s] + " " + r[2] + " " + h.encode());
      }
    } finally {
      for (TcpStore s : stores) {
        s.close();
      }
    }
  }

  /** Runs the set/get/add mix for {@code nanos}; returns {ops, adds, elapsed nanos}. */
  private static long[] mix(
      TcpStore store, String[] keys, byte[] value, String counter, long nanos, Histogram h) {
    long ops = 0;
    long adds = 0;
    long start = System.nanoTime();
    long end = start + nanos;
    long now = start;
    for (int i = 0; now < end; i++) {
      String key = keys[i & 63];
      store.set(key, value);
      long t1 = System.nanoTime();
      store.get(key);
      long t2 = System.nanoTime();
      store.add(counter, 1);
      adds++;
      long t3 = System.nanoTime();
      if (h != null) {
        h.record(t1 - now);
        h.record(t2 - t1);
        h.record(t3 - t2);
      }
      now = t3;
      ops += 3;
    }
    return new long[] {ops, adds, now - start};
  }

  // ---------------------------------------------------------------- latency

  private static void latency(String[] args) throws IOException {
    int iterations = Integer.parseInt(args[1]);
    int echoPort = Integer.parseInt(args[2]);
    List<String> names = new ArrayList<>();
    List<TcpStore> stores = new ArrayList<>();
    for (int t = 3; t < args.length; t++) {
      names.add(args[t].substring(0, args[t].indexOf('=')));
      stores.add(
          connect(
              Integer.parseInt(args[t].substring(args[t].indexOf('=') + 1)), StoreProtocol.V1_13));
    }
    try (Socket echo = new Socket(InetAddress.getLoopbackAddress(), echoPort)) {
      echo.setTcpNoDelay(true);
      OutputStream out = echo.getOutputStream();
      InputStream in = echo.getInputStream();
      byte[] frame = new byte[ECHO_BYTES];
      byte[] back = new byte[ECHO_BYTES];
      Histogram echoH = new Histogram();
      List<Histogram> storeH = new ArrayList<>();
      for (int i = 0; i < stores.size(); i++) {
        storeH.add(new Histogram());
      }
      int rounds = 10;
      int per = Math.max(1, iterations / rounds);
      // Warm up every path, then interleave rounds so that drift affects all alike.
      for (int r = -1; r < rounds; r++) {
        boolean measured = r >= 0;
        int n = measured ? per : Math.max(20_000, per);
        for (int i = 0; i < n; i++) {
          long t0 = System.nanoTime();
          out.write(frame);
          if (in.readNBytes(back, 0, ECHO_BYTES) < ECHO_BYTES) {
            throw new IOException("echo server closed");
          }
          if (measured) {
            echoH.record(System.nanoTime() - t0);
          }
        }
        for (int s = 0; s < stores.size(); s++) {
          TcpStore store = stores.get(s);
          for (int i = 0; i < n; i++) {
            long t0 = System.nanoTime();
            store.add("latency", 1);
            if (measured) {
              storeH.get(s).record(System.nanoTime() - t0);
            }
          }
        }
      }
      say(String.format("LATENCY echo %.1f %.1f", echoH.percentile(0.5), echoH.percentile(0.99)));
      for (int s = 0; s < stores.size(); s++) {
        Histogram h = storeH.get(s);
        say(
            String.format(
                "LATENCY %s %.1f %.1f", names.get(s), h.percentile(0.5), h.percentile(0.99)));
      }
    } finally {
      for (TcpStore s : stores) {
        s.close();
      }
    }
  }

  // ---------------------------------------------------------------- storm

  private static void storm(String[] args)
      throws IOException, InterruptedException, java.util.concurrent.ExecutionException {
    int clients = Integer.parseInt(args[1]);
    StoreProtocol protocol = StoreProtocol.parse(args[2]);
    int port = Integer.parseInt(args[3]);
    String counter = "storm/" + System.nanoTime();
    // Warm up this JVM's client code (not the clock's business), then storm.
    for (int i = 0; i < 300; i++) {
      try (TcpStore s = connect(port, protocol)) {
        s.add(counter + "/warmup", 1);
      }
    }
    TcpStore[] stores = new TcpStore[clients];
    AtomicLong lastConnected = new AtomicLong();
    AtomicInteger failures = new AtomicInteger();
    AtomicLong lastDone = new AtomicLong();
    String firstError = null;
    long start = System.nanoTime();
    try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<?>> futures = new ArrayList<>(clients);
      for (int i = 0; i < clients; i++) {
        int index = i;
        futures.add(
            pool.submit(
                () -> {
                  stores[index] = connect(port, protocol);
                  lastConnected.accumulateAndGet(System.nanoTime(), Math::max);
                  stores[index].add(counter, 1);
                  lastDone.accumulateAndGet(System.nanoTime(), Math::max);
                  return null;
                }));
      }
      for (Future<?> f : futures) {
        try {
          f.get();
        } catch (java.util.concurrent.ExecutionException e) {
          failures.incrementAndGet();
          if (firstError == null) {
            firstError = String.valueOf(e.getCause());
          }
        }
      }
    }
    double seconds = (lastDone.get() - start) / 1e9;
    // All connections are still open: each serves a second request.
    long value = -1;
    boolean secondRound = failures.get() == 0;
    if (secondRound) {
      try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
        List<Future<Long>> futures = new ArrayList<>(clients);
        for (TcpStore s : stores) {
          futures.add(pool.submit(() -> s.add(counter, 1)));
        }
        for (Future<Long> f : futures) {
          value = Math.max(value, f.get());
        }
      }
      secondRound = value == 2L * clients;
    }
    for (TcpStore s : stores) {
      if (s != null) {
        s.close();
      }
    }
    say(
        String.format(
            "STORM %.3f %d %s %d %s %.3f",
            seconds,
            value,
            secondRound,
            failures.get(),
            firstError == null ? "-" : firstError.replace(' ', '_'),
            (lastConnected.get() - start) / 1e9));
  }
}
