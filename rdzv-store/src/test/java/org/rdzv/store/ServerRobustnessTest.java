package org.rdzv.store;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.rdzv.testing.Await;

/**
 * Misbehaving connections against a real server: each is closed (or simply ignored while it
 * stalls), while well-behaved clients, their data and their pending waits are unaffected.
 */
class ServerRobustnessTest {
  private static final int VALUE_LIMIT = 64 * 1024;

  private TcpStoreServer server;
  private TcpStore v1;
  private TcpStore v2;
  private CompletableFuture<String> pendingGet;

  @BeforeEach
  void start() {
    server =
        TcpStoreServer.start(
            TcpStoreServerOptions.builder().host("127.0.0.1").maxValueLength(VALUE_LIMIT).build());
    v1 = client(StoreProtocol.V1_13);
    v2 = client(StoreProtocol.V2);
    v1.set("precious", "data");
    TcpStore waiter = client(StoreProtocol.V1_13);
    pendingGet =
        CompletableFuture.supplyAsync(
            () -> {
              try (waiter) {
                return waiter.getString("released-at-the-end");
              }
            });
    Await.until("the get is parked", Duration.ofSeconds(5), () -> server.pendingWaits() == 1);
  }

  @AfterEach
  void stop() throws Exception {
    // Whatever the bad connections did, everything else still works.
    assertThat(server.isRunning()).isTrue();
    assertThat(v1.getString("precious")).isEqualTo("data");
    assertThat(v2.add("counter", 1)).isEqualTo(v1.add("counter", 0));
    assertThat(server.pendingWaits()).isEqualTo(1);
    v2.set("released-at-the-end", "yes");
    assertThat(pendingGet.get(5, TimeUnit.SECONDS)).isEqualTo("yes");
    v1.close();
    v2.close();
    server.close();
  }

  private TcpStore client(StoreProtocol protocol) {
    return TcpStore.connect(
        TcpStoreOptions.builder("127.0.0.1", server.port())
            .protocol(protocol)
            .timeout(Duration.ofSeconds(5))
            .build());
  }

  private Socket raw() throws IOException {
    Socket s = new Socket("127.0.0.1", server.port());
    s.setSoTimeout(5000);
    return s;
  }

  /** Reads until the server closes the connection; fails if it does not within 5 s. */
  private static void assertClosedByServer(Socket s) throws IOException {
    InputStream in = s.getInputStream();
    byte[] buf = new byte[4096];
    try {
      while (in.read(buf) >= 0) {
        // discard any answers to the valid prefix
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the server did not close the connection", e);
    } catch (IOException e) {
      // reset by the server: closed as well
    }
  }

  private static byte[] le(long v) {
    return ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(v).array();
  }

  @Test
  void randomBytesCloseOnlyThatConnection() throws Exception {
    Random random = new Random(1234);
    for (int i = 0; i < 20; i++) {
      byte[] junk = new byte[1 + random.nextInt(64 * 1024)];
      random.nextBytes(junk);
      try (Socket s = raw()) {
        try {
          s.getOutputStream().write(junk);
        } catch (IOException e) {
          // the server may close while we are still writing
        }
        assertClosedByServer(s);
      }
    }
  }

  @Test
  void absurdLengthPrefixes() throws Exception {
    byte[][] frames = {
      Hex.bytes("00", "ffffffffffffff7f"), // 1.13 SET, key length 2^63-1
      Hex.bytes("00 cef7853c", "01", "ffffffffffffffff"), // 2.x SET, key length 2^64-1
      Hex.bytes("00 cef7853c", "06", "ffffffff00000000"), // WAIT with 4 billion keys
      Hex.bytes("00 cef7853c", "0b", "ffffffffffffffff"), // MULTI_SET with a negative count
      Hex.bytes("00 0100000000000000 6b", "00ffffffffffffff"), // value length 2^56
    };
    for (byte[] frame : frames) {
      try (Socket s = raw()) {
        s.getOutputStream().write(frame);
        assertClosedByServer(s);
      }
    }
  }

  @Test
  void oversizedValueIsRefusedFromItsHeader() throws Exception {
    try (Socket s = raw()) {
      OutputStream out = s.getOutputStream();
      out.write(Hex.bytes("00 0200000000000000 2f6b"));
      out.write(le(VALUE_LIMIT + 1));
      out.write(new byte[100]); // nowhere near the declared length
      assertClosedByServer(s);
    }
    // At the limit it is fine.
    byte[] atLimit = new byte[VALUE_LIMIT];
    v2.set("big", atLimit);
    assertThat(v1.get("big")).hasSize(VALUE_LIMIT);
  }

  @Test
  void unknownCommandsAndSecondValidate() throws Exception {
    for (String bytes :
        new String[] {
          "0d", "09", "ff", "00 cef7853c ff", "00 cef7853c 00 cef7853c", "00 cef7853c 07 00"
        }) {
      try (Socket s = raw()) {
        s.getOutputStream().write(Hex.bytes(bytes));
        assertClosedByServer(s);
      }
    }
  }

  @Test
  void truncatedFramesThenDisconnect() throws Exception {
    String[] prefixes = {
      "00", "00 0200", "00 0200000000000000 2f", "05 0100000000000000", "00 cef7"
    };
    for (String prefix : prefixes) {
      try (Socket s = raw()) {
        s.getOutputStream().write(Hex.bytes(prefix));
      }
    }
    Await.until(
        "the truncated connections are gone",
        Duration.ofSeconds(5),
        () -> server.connectionCount() == 3);
  }

  /** A 2.x MULTI_SET of {@code pairs} key/value pairs, the first {@code sent} of them written. */
  private static byte[] multiSet(int pairs, int sent) {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    out.writeBytes(Hex.bytes("00 cef7853c", "0b"));
    out.writeBytes(le(pairs));
    for (int i = 0; i < sent; i++) {
      byte[] key = ("/ms" + i).getBytes(java.nio.charset.StandardCharsets.US_ASCII);
      out.writeBytes(le(key.length));
      out.writeBytes(key);
      out.writeBytes(le(1));
      out.writeBytes(new byte[] {(byte) ('0' + i)});
    }
    return out.toByteArray();
  }

  @Test
  void aMultiSetCutShortAppliesNothingAndAWholeOneEverything() throws Exception {
    try (Socket s = raw()) {
      s.getOutputStream().write(multiSet(3, 2)); // two of three pairs, then the client is gone
    }
    Await.until(
        "the cut-short connection is gone",
        Duration.ofSeconds(5),
        () -> server.connectionCount() == 3);
    assertThat(v2.check(List.of("ms0"))).isFalse();
    assertThat(v2.check(List.of("ms1"))).isFalse();
    try (Socket s = raw()) {
      s.getOutputStream().write(multiSet(3, 3));
      s.getOutputStream().flush();
      // MULTI_SET has no reply: a GET on another connection after it shows all three pairs.
      Await.until(
          "the whole MULTI_SET is applied",
          Duration.ofSeconds(5),
          () -> v2.check(List.of("ms0", "ms1", "ms2")));
    }
    assertThat(v2.getString("ms2")).isEqualTo("2");
    assertThat(v1.getString("precious")).isEqualTo("data");
  }

  @Test
  void halfAFrameThatStallsBlocksNobody() throws Exception {
    List<Socket> stalled = new ArrayList<>();
    try {
      for (String prefix :
          new String[] {
            "00 05", "00 cef7853c 01 0300000000000000 2f", "03 0400000000000000 2f636e"
          }) {
        Socket s = raw();
        s.getOutputStream().write(Hex.bytes(prefix));
        stalled.add(s);
      }
      for (int i = 0; i < 100; i++) {
        v1.set("k" + i, "v");
        assertThat(v2.getString("k" + i)).isEqualTo("v");
      }
      // The stalled connections are kept (PyTorch's servers never time out a client), and
      // finishing the frame later still works.
      Socket late = stalled.get(2);
      late.getOutputStream().write(Hex.bytes("74 0500000000000000"));
      byte[] reply = late.getInputStream().readNBytes(8);
      assertThat(ByteBuffer.wrap(reply).order(ByteOrder.LITTLE_ENDIAN).getLong()).isEqualTo(5);
    } finally {
      for (Socket s : stalled) {
        s.close();
      }
    }
  }

  @Test
  void aClientThatNeverReadsIsThrottledNotFatal() throws Exception {
    byte[] value = new byte[VALUE_LIMIT];
    v2.set("fat", value);
    try (Socket s = raw()) {
      s.setReceiveBufferSize(4096);
      OutputStream out = s.getOutputStream();
      // Pipeline GETs of a 64 KiB value and never read: up to ~64 MiB of answers.
      ExecutorService writer = Executors.newSingleThreadExecutor();
      Future<?> writing =
          writer.submit(
              () -> {
                byte[] get = Hex.bytes("02 0400000000000000 2f666174");
                byte[] many = new byte[get.length * 1000];
                for (int i = 0; i < 1000; i++) {
                  System.arraycopy(get, 0, many, i * get.length, get.length);
                }
                try {
                  out.write(many);
                } catch (IOException e) {
                  // blocked and then closed: fine
                }
                return null;
              });
      // Meanwhile other clients are served promptly.
      for (int i = 0; i < 50; i++) {
        assertThat(v1.add("during", 1)).isEqualTo(i + 1);
      }
      s.close();
      writing.get(10, TimeUnit.SECONDS);
      writer.shutdownNow();
    }
  }

  @Test
  void manyBadClientsAtOnce() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(16);
    try {
      List<Future<?>> futures = new ArrayList<>();
      for (int i = 0; i < 200; i++) {
        int seed = i;
        futures.add(
            pool.submit(
                () -> {
                  Random random = new Random(seed);
                  byte[] junk = new byte[1 + random.nextInt(4096)];
                  random.nextBytes(junk);
                  junk[0] = (byte) (0x20 + random.nextInt(0xd0)); // never a valid first command
                  try (Socket s = raw()) {
                    s.getOutputStream().write(junk);
                    assertClosedByServer(s);
                  } catch (IOException e) {
                    // reset while writing: also closed
                  }
                  return null;
                }));
        if (i % 20 == 0) {
          assertThat(v2.add("good", 1)).isEqualTo(i / 20 + 1);
        }
      }
      for (Future<?> f : futures) {
        f.get(30, TimeUnit.SECONDS);
      }
    } finally {
      pool.shutdownNow();
    }
    assertThat(v1.getString("good")).isEqualTo("10");
    assertThat(new String(v2.get("precious"), UTF_8)).isEqualTo("data");
  }
}
