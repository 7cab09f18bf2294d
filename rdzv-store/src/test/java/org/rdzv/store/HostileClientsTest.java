package org.rdzv.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.rdzv.testing.Await;
import org.rdzv.testing.ChildProcess;

/**
 * The attacks of issue 11, each against a server in a child JVM with a small heap, while a healthy
 * client measures its latency throughout. Each asserts that the server survives and keeps serving
 * the healthy client within a generous bound (the bugs gave seconds, or a dead server).
 */
class HostileClientsTest {
  private static final Duration ATTACK =
      Duration.ofSeconds(
          Long.parseLong(System.getenv().getOrDefault("RDZV_TEST_ATTACK_SECONDS", "5")));

  /** Sockets the attack opened; closed at the end of each test. */
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();

  private Socket connect(int port) throws IOException {
    Socket s = new Socket();
    s.setTcpNoDelay(true);
    s.connect(new InetSocketAddress("127.0.0.1", port), 10_000);
    sockets.add(s);
    return s;
  }

  private void closeAll() {
    for (Socket s : sockets) {
      try {
        s.close();
      } catch (IOException e) {
        // closing anyway
      }
    }
    sockets.clear();
  }

  private static ByteBuffer le(int capacity) {
    return ByteBuffer.allocate(capacity).order(ByteOrder.LITTLE_ENDIAN);
  }

  /** A 2.x CHECK/WAIT/MULTI_GET frame (code) of {@code keys}. */
  private static byte[] multiKey(int code, List<byte[]> keys) {
    long size = 1 + 8;
    for (byte[] k : keys) {
      size += 8 + k.length;
    }
    ByteBuffer b = le((int) size);
    b.put((byte) code).putLong(keys.size());
    for (byte[] k : keys) {
      b.putLong(k.length).put(k);
    }
    return b.array();
  }

  private static final byte[] VALIDATE = Hex.bytes("00 cef7853c");

  /** Runs {@code body} on {@code n} platform threads; returns them (they stop by themselves). */
  private static List<Thread> attackers(int n, String name, Attacker body) {
    List<Thread> threads = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int id = i;
      threads.add(
          Thread.ofPlatform()
              .daemon()
              .name(name + "-" + i)
              .start(
                  () -> {
                    try {
                      body.run(id);
                    } catch (IOException e) {
                      // the server closed the attacker, or the test did: expected
                    }
                  }));
    }
    return threads;
  }

  interface Attacker {
    void run(int id) throws IOException;
  }

  private static void join(List<Thread> threads) throws InterruptedException {
    for (Thread t : threads) {
      t.join(Duration.ofSeconds(30));
      assertThat(t.isAlive()).as("attacker %s stopped", t.getName()).isFalse();
    }
  }

  /** The child's latest {@code stats} line, parsed into name=value pairs. */
  private static java.util.Map<String, String> stats(ChildProcess child) {
    int before = child.lines().size();
    child.send("stats");
    String line =
        Await.value(
            "a stats line",
            Duration.ofSeconds(30),
            () -> {
              List<String> lines = child.lines();
              for (int i = before; i < lines.size(); i++) {
                if (lines.get(i).startsWith("stats ")) {
                  return lines.get(i);
                }
              }
              return null;
            });
    java.util.Map<String, String> map = new java.util.LinkedHashMap<>();
    for (String part : line.substring(6).split(" ")) {
      map.put(part.substring(0, part.indexOf('=')), part.substring(part.indexOf('=') + 1));
    }
    return map;
  }

  private static void report(String attack, LatencyProbe.Stats before, LatencyProbe.Stats during) {
    System.out.println("FIGURE " + attack + ": quiet " + before + "; during the attack " + during);
  }

  /** The gauges the reports show. */
  private static String brief(java.util.Map<String, String> stats) {
    StringBuilder b = new StringBuilder();
    for (String k :
        List.of(
            "running",
            "connections",
            "memory.used",
            "memory.held.frames",
            "memory.held.replies",
            "memory.held.waits",
            "connections.paused.memory",
            "connections.paused.replies",
            "connections.rejected.limit",
            "connections.rejected.memory")) {
      if (stats.containsKey(k)) {
        b.append(b.length() == 0 ? "" : " ").append(k).append('=').append(stats.get(k));
      }
    }
    for (java.util.Map.Entry<String, String> e : stats.entrySet()) {
      if (e.getKey().startsWith("frames.rejected.") && !e.getValue().equals("0")) {
        b.append(' ').append(e.getKey()).append('=').append(e.getValue());
      }
    }
    return b.toString();
  }

  private static long gauge(java.util.Map<String, String> stats, String name) {
    return Long.parseLong(stats.getOrDefault(name, "0"));
  }

  /** Closes every attack socket at {@code deadline} (plus a grace), so attackers always end. */
  private Thread closeAt(long deadline) {
    return Thread.ofPlatform()
        .daemon()
        .start(
            () -> {
              java.util.concurrent.locks.LockSupport.parkNanos(
                  deadline - System.nanoTime() + 200_000_000L);
              closeAll();
            });
  }

  /** Starts the child and the probe, measures a quiet second; returns the quiet figures. */
  private record Setup(ChildProcess child, int port, LatencyProbe probe, LatencyProbe.Stats quiet)
      implements AutoCloseable {
    @Override
    public void close() {
      probe.close();
      if (System.getenv("RDZV_TEST_DUMP_CHILD") != null) {
        System.out.println("CHILD OUTPUT\n" + child.output());
      }
      child.close();
    }
  }

  private static Setup setup(String heap, String... options) throws IOException {
    ChildProcess child = ServerChild.start(heap, options);
    int port = ServerChild.port(child);
    LatencyProbe probe = LatencyProbe.start(port);
    probe.awaitOperations(200, Duration.ofSeconds(30)); // warm up
    long t = System.nanoTime();
    probe.awaitOperations(1000, Duration.ofSeconds(30));
    return new Setup(child, port, probe, probe.since(t));
  }

  @Test
  void slowWaitFrameTrickledByteByByte() throws Exception {
    try (Setup s = setup("256m")) {
      // A 7 MB frame: its first 2 MB at once, then the rest one byte per write. (The server
      // used to parse the whole received prefix again on every read: seconds per byte.)
      List<byte[]> keys = new ArrayList<>();
      for (int i = 0; i < 131_072; i++) {
        keys.add(String.format("/slow-wait-key-%045d", i).getBytes());
      }
      byte[] frame = multiKey(0x06, keys);
      int prefix = 2 * 1024 * 1024;
      long deadline = System.nanoTime() + ATTACK.toNanos();
      AtomicLong sent = new AtomicLong();
      long t0 = System.nanoTime();
      Thread closer = closeAt(deadline);
      List<Thread> attack =
          attackers(
              1,
              "trickle",
              id -> {
                Socket socket = connect(s.port());
                OutputStream out = socket.getOutputStream();
                out.write(VALIDATE);
                out.write(frame, 0, prefix);
                sent.addAndGet(prefix);
                for (int i = prefix; i < frame.length && System.nanoTime() - deadline < 0; i++) {
                  out.write(frame[i]);
                  sent.incrementAndGet();
                }
              });
      join(attack);
      LatencyProbe.Stats during = s.probe.between(t0, deadline);
      java.util.Map<String, String> held = stats(s.child);
      closer.join();
      report(
          "slow WAIT frame, 2 MB then one byte per write ("
              + sent
              + " bytes sent; "
              + brief(held)
              + ")",
          s.quiet,
          during);
      s.probe.assertHealthy();
      assertThat(held.get("running")).isEqualTo("true");
      assertThat(during.p99Micros()).isLessThan(1_000_000);
    }
  }

  @Test
  void twentyHalfSentEightMebibyteSets() throws Exception {
    try (Setup s = setup("256m")) {
      long t0 = System.nanoTime();
      long deadline = t0 + ATTACK.toNanos();
      Thread closer = closeAt(deadline);
      byte[] half = new byte[4 * 1024 * 1024];
      List<Thread> attack =
          attackers(
              20,
              "half-set",
              id -> {
                Socket socket = connect(s.port());
                OutputStream out = socket.getOutputStream();
                byte[] key = ("/half-" + id).getBytes();
                ByteBuffer header = le(1 + 8 + key.length + 8);
                header.put((byte) 0x01).putLong(key.length).put(key).putLong(8L * 1024 * 1024);
                out.write(VALIDATE);
                out.write(header.array());
                out.write(half);
              });
      // Some attackers are not read from (no memory for them): their writes block until closed.
      Await.until(
          "the attackers' memory is held",
          Duration.ofSeconds(30),
          () -> gauge(stats(s.child), "memory.held.frames") > 8L * 1024 * 1024);
      java.util.Map<String, String> held = stats(s.child);
      closer.join();
      join(attack);
      LatencyProbe.Stats during = s.probe.between(t0, deadline);
      Await.until(
          "the attackers' memory is given back",
          Duration.ofSeconds(30),
          () -> gauge(stats(s.child), "memory.held.frames") == 0);
      report(
          "twenty half-sent 8 MiB SETs (server while held: " + brief(held) + ")", s.quiet, during);
      s.probe.assertHealthy();
      assertThat(held.get("running")).isEqualTo("true");
      // Within the budget (a quarter of 256 MiB), never the 80 MiB the attackers sent.
      assertThat(gauge(held, "memory.used")).isLessThanOrEqualTo(gauge(held, "memory.budget"));
      assertThat(during.p99Micros()).isLessThan(1_000_000);
    }
  }

  @Test
  void attackersThatConnectAndCloseGiveTheirMemoryBack() throws Exception {
    try (Setup s = setup("256m", "frameIdleTimeout=PT2S")) {
      java.util.Map<String, String> quiet = stats(s.child);
      long t0 = System.nanoTime();
      long deadline = t0 + ATTACK.toNanos();
      byte[] part = new byte[1024 * 1024];
      int rounds = 0;
      for (; rounds < 10 || System.nanoTime() - deadline < 0; rounds++) {
        Thread closer = closeAt(System.nanoTime() + 300_000_000L);
        List<Thread> attack =
            attackers(
                20,
                "come-and-go",
                id -> {
                  Socket socket = connect(s.port());
                  OutputStream out = socket.getOutputStream();
                  byte[] key = ("/gone-" + id).getBytes();
                  ByteBuffer header = le(1 + 8 + key.length + 8);
                  header.put((byte) 0x01).putLong(key.length).put(key).putLong(8L * 1024 * 1024);
                  out.write(VALIDATE);
                  out.write(header.array());
                  out.write(part);
                });
        join(attack);
        closer.join();
        closeAll();
      }
      LatencyProbe.Stats during = s.probe.since(t0);
      Await.until(
          "the attackers' connections and memory are gone",
          Duration.ofSeconds(30),
          () -> {
            java.util.Map<String, String> now = stats(s.child);
            return gauge(now, "connections") == 1
                && gauge(now, "memory.held.frames") == 0
                && gauge(now, "memory.used") == gauge(quiet, "memory.used");
          });
      java.util.Map<String, String> after = stats(s.child);
      report(
          rounds
              + " rounds of 20 attackers that connect, send 1 MiB of an 8 MiB SET and close"
              + " (before: "
              + brief(quiet)
              + "; after: "
              + brief(after)
              + ")",
          s.quiet,
          during);
      s.probe.assertHealthy();
      assertThat(during.p99Micros()).isLessThan(1_000_000);
    }
  }

  @Test
  void multiGetOfOneBigKeyNeverRead() throws Exception {
    try (Setup s = setup("256m")) {
      byte[] key = new byte[4000];
      java.util.Arrays.fill(key, (byte) 'k');
      key[0] = '/';
      try (Socket setter = connect(s.port())) {
        ByteBuffer set = le(1 + 8 + key.length + 8 + 4000);
        set.put((byte) 0x01).putLong(key.length).put(key).putLong(4000).put(new byte[4000]);
        setter.getOutputStream().write(VALIDATE);
        setter.getOutputStream().write(set.array());
        // GETNUMKEYS: a round trip, so the SET is done.
        setter.getOutputStream().write(0x07);
        assertThat(setter.getInputStream().readNBytes(8)).hasSize(8);
      }
      int entries = 1024 * 1024 / (8 + key.length);
      ByteBuffer chunk = le(entries * (8 + key.length));
      for (int i = 0; i < entries; i++) {
        chunk.putLong(key.length).put(key);
      }
      long deadline = System.nanoTime() + ATTACK.toNanos();
      long t0 = System.nanoTime();
      AtomicLong requests = new AtomicLong();
      Thread closer = closeAt(deadline);
      List<Thread> attack =
          attackers(
              3,
              "multi-get",
              id -> {
                while (System.nanoTime() - deadline < 0) {
                  try {
                    Socket socket = connect(s.port());
                    socket.setReceiveBufferSize(4096);
                    OutputStream out = socket.getOutputStream();
                    out.write(VALIDATE);
                    ByteBuffer header = le(9);
                    header.put((byte) 0x0A).putLong(131_072);
                    out.write(header.array());
                    requests.incrementAndGet();
                    for (int sentKeys = 0;
                        sentKeys < 131_072 && System.nanoTime() - deadline < 0;
                        sentKeys += entries) {
                      int n = Math.min(entries, 131_072 - sentKeys);
                      out.write(chunk.array(), 0, n * (8 + key.length));
                    }
                  } catch (IOException e) {
                    // refused by the server: again
                  }
                }
              });
      join(attack);
      closer.join();
      LatencyProbe.Stats during = s.probe.between(t0, deadline);
      java.util.Map<String, String> after = stats(s.child);
      report(
          "MULTI_GET of one 4,000-byte key 131,072 times, never read, 3 connections ("
              + requests
              + " requests; "
              + brief(after)
              + ")",
          s.quiet,
          during);
      s.probe.assertHealthy();
      assertThat(after.get("running")).isEqualTo("true");
      assertThat(gauge(after, "frames.rejected.reply_length")).isPositive();
      assertThat(s.child.lines())
          .anyMatch(l -> l.contains("value length") && l.contains("exceeds the limit of 8388608"));
      // Generous (the bug: p99 about a second, then a dead server); readings vary with load.
      assertThat(during.p99Micros()).isLessThan(1_000_000);
    }
  }

  @Test
  void waitOnAHundredThousandKeysFromAFewConnections() throws Exception {
    try (Setup s = setup("256m")) {
      long deadline = System.nanoTime() + ATTACK.toNanos();
      long t0 = System.nanoTime();
      AtomicLong waits = new AtomicLong();
      Thread closer = closeAt(deadline);
      List<Thread> attack =
          attackers(
              3,
              "wait-100k",
              id -> {
                List<byte[]> keys = new ArrayList<>();
                for (int i = 0; i < 100_000; i++) {
                  keys.add(("/w" + id + "-" + i).getBytes());
                }
                byte[] frame = multiKey(0x06, keys);
                Socket socket = connect(s.port());
                OutputStream out = socket.getOutputStream();
                out.write(VALIDATE);
                while (System.nanoTime() - deadline < 0) {
                  out.write(frame);
                  out.write(0x0C); // CANCEL_WAIT
                  int reply = socket.getInputStream().read();
                  if (reply != 0x01) {
                    throw new IOException("CANCEL_WAIT answered " + reply);
                  }
                  waits.incrementAndGet();
                }
              });
      join(attack);
      closer.join();
      LatencyProbe.Stats during = s.probe.between(t0, deadline);
      java.util.Map<String, String> after = stats(s.child);
      report(
          "WAIT on 100,000 keys then CANCEL_WAIT, in a loop on 3 connections ("
              + waits
              + " waits; "
              + brief(after)
              + ")",
          s.quiet,
          during);
      s.probe.assertHealthy();
      assertThat(after.get("running")).isEqualTo("true");
      // The median shows that no turn is stuck in one huge request; the tail is mostly young-GC
      // pauses copying the parked keys, longer on a loaded host (the bug: p99 270 ms).
      assertThat(during.p50Micros()).isLessThan(50_000);
      assertThat(during.p99Micros()).isLessThan(1_000_000);
    }
  }

  @Test
  void connectionStormBeyondTheCap() throws Exception {
    try (Setup s = setup("256m", "maxConnections=500")) {
      long t0 = System.nanoTime();
      AtomicLong served = new AtomicLong();
      AtomicLong refused = new AtomicLong();
      java.util.concurrent.atomic.AtomicInteger most =
          new java.util.concurrent.atomic.AtomicInteger();
      List<Thread> storm = new ArrayList<>();
      for (int i = 0; i < 3000; i++) {
        storm.add(
            Thread.ofVirtual()
                .start(
                    () -> {
                      try {
                        Socket socket = connect(s.port());
                        socket.setSoTimeout(20_000);
                        OutputStream out = socket.getOutputStream();
                        out.write(VALIDATE);
                        out.write(0x07); // GETNUMKEYS
                        if (socket.getInputStream().readNBytes(8).length == 8) {
                          served.incrementAndGet();
                        } else {
                          refused.incrementAndGet();
                        }
                      } catch (IOException e) {
                        refused.incrementAndGet();
                      }
                    }));
      }
      Thread watcher =
          Thread.ofPlatform()
              .daemon()
              .start(
                  () -> {
                    while (storm.stream().anyMatch(Thread::isAlive)) {
                      most.accumulateAndGet((int) gauge(stats(s.child), "connections"), Math::max);
                      java.util.concurrent.locks.LockSupport.parkNanos(5_000_000);
                    }
                  });
      for (Thread t : storm) {
        t.join(Duration.ofSeconds(60));
      }
      watcher.join(Duration.ofSeconds(30));
      LatencyProbe.Stats during = s.probe.since(t0);
      java.util.Map<String, String> held = stats(s.child);
      closeAll();
      report(
          "storm of 3,000 connections held open, cap 500 (served "
              + served
              + ", refused "
              + refused
              + ", at most "
              + most
              + " open; "
              + brief(held)
              + ")",
          s.quiet,
          during);
      s.probe.assertHealthy();
      assertThat(most.get()).isLessThanOrEqualTo(500);
      assertThat(served.get()).isGreaterThanOrEqualTo(499);
      assertThat(served.get() + refused.get()).isEqualTo(3000);
      assertThat(gauge(held, "connections.rejected.limit")).isGreaterThanOrEqualTo(2000);
      // The cap is what this test is about (the old server held all 3,000, p99 24 ms): a loose
      // bound, for accepts and closes of 2,500 connections competing with the probe on 2 CPUs.
      assertThat(during.p99Micros()).isLessThan(1_000_000);
    }
  }
}
