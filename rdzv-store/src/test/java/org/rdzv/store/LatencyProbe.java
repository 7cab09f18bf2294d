package org.rdzv.store;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.concurrent.locks.LockSupport;

/**
 * A healthy 2.x client that measures itself: on its own thread it sends {@code SET /probe} then
 * {@code GET /probe} (one round trip, the GET answers) about every half millisecond, and records
 * the time of each operation. Used by the attack tests to assert that one client's misbehaviour
 * never delays another by more than a bound.
 */
final class LatencyProbe implements AutoCloseable {
  private static final int CAPACITY = 1 << 20;
  private static final byte[] VALUE = "healthy-value-of-32-bytes-......".getBytes();

  private final Socket socket;
  private final Thread thread;
  private final long[] startedAt = new long[CAPACITY];
  private final long[] took = new long[CAPACITY];
  private volatile int count;

  /** When the operation in flight started, or 0 between operations. */
  private volatile long inFlightSince;

  private volatile boolean stopping;
  private volatile Throwable failure;

  /** Figures of a window of operations, in microseconds. */
  record Stats(int operations, long p50Micros, long p99Micros, long maxMicros) {
    @Override
    public String toString() {
      return String.format(
          "p50 %s / p99 %s (max %s, %d ops)",
          ms(p50Micros), ms(p99Micros), ms(maxMicros), operations);
    }

    private static String ms(long micros) {
      return micros < 10_000
          ? String.format("%.2f ms", micros / 1000.0)
          : String.format("%.0f ms", micros / 1000.0);
    }
  }

  private LatencyProbe(int port) throws IOException {
    socket = new Socket();
    socket.setTcpNoDelay(true);
    socket.connect(new InetSocketAddress("127.0.0.1", port), 10_000);
    socket.setSoTimeout(60_000);
    thread = Thread.ofPlatform().name("latency-probe").daemon().unstarted(this::run);
  }

  static LatencyProbe start(int port) throws IOException {
    LatencyProbe probe = new LatencyProbe(port);
    probe.thread.start();
    return probe;
  }

  private static byte[] frames() {
    ByteBuffer b = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);
    byte[] key = "/probe".getBytes();
    b.put((byte) 0x01).putLong(key.length).put(key).putLong(VALUE.length).put(VALUE); // SET
    b.put((byte) 0x03).putLong(key.length).put(key); // GET
    return Arrays.copyOf(b.array(), b.position());
  }

  private void run() {
    try {
      OutputStream out = socket.getOutputStream();
      InputStream in = socket.getInputStream();
      out.write(Hex.bytes("00 cef7853c")); // VALIDATE + magic: the 2.x family
      byte[] request = frames();
      byte[] reply = new byte[8 + VALUE.length];
      while (!stopping && count < CAPACITY) {
        long t0 = System.nanoTime();
        inFlightSince = t0;
        out.write(request);
        if (in.readNBytes(reply, 0, reply.length) < reply.length) {
          throw new IOException("the server closed the probe's connection");
        }
        long t1 = System.nanoTime();
        if (reply[0] != VALUE.length || reply[8] != VALUE[0]) {
          throw new IOException("wrong reply " + Hex.of(reply));
        }
        int i = count;
        startedAt[i] = t0;
        took[i] = t1 - t0;
        count = i + 1;
        inFlightSince = 0;
        LockSupport.parkNanos(500_000);
      }
    } catch (IOException | RuntimeException e) {
      if (!stopping) {
        failure = e;
      }
    }
  }

  /** Fails if the probe's connection broke. */
  void assertHealthy() {
    Throwable f = failure;
    if (f != null) {
      throw new AssertionError("the healthy client failed: " + f, f);
    }
  }

  /** Operations started since {@code fromNanos} (a {@link System#nanoTime()}). */
  Stats since(long fromNanos) {
    return between(fromNanos, Long.MAX_VALUE);
  }

  /** Operations started in [{@code fromNanos}, {@code toNanos}). */
  Stats between(long fromNanos, long toNanos) {
    long flying = inFlightSince;
    int n = count;
    long[] window = new long[n + 1];
    int m = 0;
    for (int i = 0; i < n; i++) {
      if (startedAt[i] - fromNanos >= 0 && startedAt[i] - toNanos < 0) {
        window[m++] = took[i];
      }
    }
    // An operation still in flight counts with the time it has taken so far.
    if (flying != 0 && flying - fromNanos >= 0 && flying - toNanos < 0) {
      window[m++] = System.nanoTime() - flying;
    }
    window = Arrays.copyOf(window, m);
    Arrays.sort(window);
    if (m == 0) {
      return new Stats(0, 0, 0, 0);
    }
    return new Stats(
        m,
        window[(int) Math.min(m - 1, Math.round(m * 0.50))] / 1000,
        window[(int) Math.min(m - 1, Math.round(m * 0.99))] / 1000,
        window[m - 1] / 1000);
  }

  /** Waits until at least {@code n} more operations completed (the probe is making progress). */
  void awaitOperations(int n, java.time.Duration timeout) {
    int target = count + n;
    org.rdzv.testing.Await.until(
        n + " more healthy operations (" + count + " so far)",
        timeout,
        () -> count >= target || failure != null);
    assertHealthy();
  }

  @Override
  public void close() {
    stopping = true;
    try {
      socket.close();
    } catch (IOException e) {
      // closing anyway
    }
    try {
      thread.join(10_000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
