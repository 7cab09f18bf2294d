package org.rdzv.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.rdzv.testing.ChildProcess;

/**
 * {@code rdzv store} as a process meeting the faults of issue 11: it runs out of heap (it must say
 * so in one line and exit non-zero) and it runs out of file descriptors (it must survive).
 */
class StoreFaultsTest {
  private static final Pattern LISTENING = Pattern.compile("listening on 127\\.0\\.0\\.1:(\\d+)");
  private static final byte[] VALIDATE = {0x00, (byte) 0xce, (byte) 0xf7, (byte) 0x85, 0x3c};

  private static List<String> java(String heap) {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.add("-Xmx" + heap);
    command.add("-XX:+UseSerialGC");
    command.add("-cp");
    command.add(
        System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")));
    command.add(Main.class.getName());
    return command;
  }

  private static int port(ChildProcess child) {
    Matcher m = LISTENING.matcher(child.awaitLine(LISTENING.asPredicate(), Duration.ofSeconds(60)));
    assertThat(m.find()).isTrue();
    return Integer.parseInt(m.group(1));
  }

  /** Waits for a matching line, returning the nanoTime when it was seen (polled every 1 ms). */
  private static long lineSeenAt(ChildProcess child, Predicate<String> match, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() - deadline < 0) {
      for (String line : child.lines()) {
        if (match.test(line)) {
          return System.nanoTime();
        }
      }
      java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
    }
    throw new AssertionError("no matching line within " + timeout + ":\n" + child.output());
  }

  private static Socket connect(int port) throws IOException {
    Socket s = new Socket();
    s.setTcpNoDelay(true);
    s.connect(new InetSocketAddress("127.0.0.1", port), 10_000);
    s.setSoTimeout(30_000);
    return s;
  }

  /** GETNUMKEYS on a 2.x connection: a round trip; returns its time in nanoseconds. */
  private static long roundTrip(Socket s) throws IOException {
    long t0 = System.nanoTime();
    s.getOutputStream().write(0x07);
    if (s.getInputStream().readNBytes(8).length < 8) {
      throw new IOException("closed by the server");
    }
    return System.nanoTime() - t0;
  }

  @Test
  void runningOutOfHeapIsOneLineAndANonZeroExit() throws Exception {
    List<String> command = java("48m");
    command.addAll(List.of("store", "--host", "127.0.0.1", "--port", "0"));
    command.addAll(List.of(StoreFaultsTest.OOM_FLAGS));
    try (ChildProcess child = ChildProcess.start(command, Map.of())) {
      int port = port(child);
      byte[] value = new byte[1024 * 1024];
      long sentAt = 0;
      int stored = 0;
      try (Socket s = connect(port)) {
        OutputStream out = s.getOutputStream();
        out.write(VALIDATE);
        for (int i = 0; i < 1000; i++) {
          byte[] key = ("/heavy-" + i).getBytes();
          ByteBuffer set =
              ByteBuffer.allocate(1 + 8 + key.length + 8).order(ByteOrder.LITTLE_ENDIAN);
          set.put((byte) 0x01).putLong(key.length).put(key).putLong(value.length);
          sentAt = System.nanoTime();
          out.write(set.array());
          out.write(value);
          roundTrip(s);
          stored++;
        }
      } catch (IOException e) {
        // the server died under us: the fault
      }
      long seen = lineSeenAt(child, l -> l.contains("OutOfMemoryError"), Duration.ofSeconds(60));
      int exit = child.awaitExit(Duration.ofSeconds(60));
      System.out.printf(
          "FIGURE out of memory after %d MiB stored: error line %.1f ms after the fatal request,"
              + " exit %d; output:%n%s%n",
          stored, (seen - sentAt) / 1e6, exit, child.output());
      assertThat(exit).as(child.output()).isNotZero();
      assertThat(child.lines())
          .as("the server's line and the command's, no stack trace")
          .anyMatch(l -> l.startsWith("ERROR:") && l.contains("failed: java.lang.OutOfMemoryError"))
          .anyMatch(l -> l.startsWith("rdzv store: the TCPStore server") && l.contains("failed"))
          .noneMatch(l -> l.startsWith("\tat "));
    }
  }

  /** A budget far past the heap: the server itself runs out of memory, not into its budget. */
  static final String[] OOM_FLAGS = {"--memory-budget", "1g"};

  @Test
  void runningOutOfDescriptorsIsSurvived() throws Exception {
    List<String> command =
        new ArrayList<>(List.of("bash", "-c", "ulimit -n 256 && exec \"$@\"", "bash"));
    command.addAll(java("256m"));
    command.addAll(List.of("store", "--host", "127.0.0.1", "--port", "0"));
    try (ChildProcess child = ChildProcess.start(command, Map.of())) {
      int port = port(child);
      List<Socket> storm = new ArrayList<>();
      try (Socket healthy = connect(port)) {
        healthy.getOutputStream().write(VALIDATE);
        roundTrip(healthy);
        long stormAt = System.nanoTime();
        for (int i = 0; i < 400; i++) {
          try {
            storm.add(connect(port));
          } catch (IOException e) {
            int exit = child.awaitExit(Duration.ofSeconds(30));
            throw new AssertionError(
                "connection "
                    + i
                    + " of the storm: "
                    + e
                    + "; the server exited with "
                    + exit
                    + " after "
                    + (System.nanoTime() - stormAt) / 1_000_000
                    + " ms; output:\n"
                    + child.output(),
                e);
          }
        }
        long seen =
            lineSeenAt(
                child,
                l -> l.contains("accept") && l.toLowerCase().contains("open files"),
                Duration.ofSeconds(30));
        long[] during = new long[500];
        for (int i = 0; i < during.length; i++) {
          during[i] = roundTrip(healthy);
        }
        Arrays.sort(during);
        assertThat(child.process().isAlive()).as(child.output()).isTrue();
        for (Socket s : storm) {
          s.close();
        }
        storm.clear();
        // Descriptors are back: a new client is served.
        long t0 = System.nanoTime();
        try (Socket late = connect(port)) {
          late.getOutputStream().write(VALIDATE);
          roundTrip(late);
        }
        long resumed = System.nanoTime() - t0;
        System.out.printf(
            "FIGURE descriptors exhausted: warning %.1f ms after the storm began; healthy p50 %.2f"
                + " ms p99 %.2f ms; new client served %.1f ms after the storm left; output:%n%s%n",
            (seen - stormAt) / 1e6,
            during[during.length / 2] / 1e6,
            during[during.length * 99 / 100] / 1e6,
            resumed / 1e6,
            child.output());
        assertThat(during[during.length * 99 / 100]).isLessThan(50_000_000L);
        assertThat(child.process().isAlive()).as(child.output()).isTrue();
      } finally {
        for (Socket s : storm) {
          s.close();
        }
      }
    }
  }
}
