package org.rdzv.store;

import static org.assertj.core.api.Assertions.assertThat;

import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.rdzv.testing.Await;

/** The server's limits of issue 11, in-process: each closes only the connection past it. */
class ServerLimitsTest {
  private static final byte[] VALIDATE = Hex.bytes("00 cef7853c");
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
  private TcpStoreServer server;

  private TcpStoreServer start(TcpStoreServerOptions.Builder options) {
    server = TcpStoreServer.start(options.host("127.0.0.1").meterRegistry(registry).build());
    return server;
  }

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
  }

  private Socket raw() throws IOException {
    Socket s = new Socket("127.0.0.1", server.port());
    s.setSoTimeout(10_000);
    s.getOutputStream().write(VALIDATE);
    return s;
  }

  private TcpStore client() {
    return TcpStore.connect(
        TcpStoreOptions.builder("127.0.0.1", server.port())
            .protocol(StoreProtocol.V2)
            .timeout(Duration.ofSeconds(10))
            .build());
  }

  private double rejected(String reason) {
    return registry.get("rdzv.store.frames.rejected").tag("reason", reason).counter().count();
  }

  private static void assertClosed(Socket s) throws IOException {
    InputStream in = s.getInputStream();
    try {
      while (in.read(new byte[4096]) >= 0) {
        // discard
      }
    } catch (SocketTimeoutException e) {
      throw new AssertionError("the server did not close the connection", e);
    } catch (IOException e) {
      // reset: closed as well
    }
  }

  private static ByteBuffer le(int n) {
    return ByteBuffer.allocate(n).order(ByteOrder.LITTLE_ENDIAN);
  }

  @Test
  void aMultiGetWhoseReplyPassesTheValueLimitIsRefused() throws Exception {
    start(TcpStoreServerOptions.builder().maxValueLength(1000));
    try (TcpStore store = client()) {
      store.set("v", new byte[400]);
      try (Socket s = raw()) {
        ByteBuffer b = le(9 + 3 * 10);
        b.put((byte) 0x0A).putLong(3);
        for (int i = 0; i < 3; i++) {
          b.putLong(2).put((byte) '/').put((byte) 'v');
        }
        s.getOutputStream().write(b.array(), 0, b.position());
        assertClosed(s);
      }
      assertThat(rejected("reply_length")).isEqualTo(1);
      // Two fit: 2 x (8 + 400) <= 1000.
      assertThat(store.multiGet(java.util.List.of("v", "v"))).hasSize(2);
      assertThat(store.getString("v")).hasSize(400);
    }
  }

  @Test
  void appendPastTheValueLimitIsRefused() throws Exception {
    start(TcpStoreServerOptions.builder().maxValueLength(1000));
    try (TcpStore store = client()) {
      store.append("a", new byte[600]);
      try (TcpStore other = client()) {
        org.assertj.core.api.Assertions.assertThatThrownBy(
                () -> {
                  other.append("a", new byte[600]);
                  other.get("a");
                })
            .isInstanceOf(org.rdzv.api.StoreException.class);
      }
      assertThat(rejected("value_length")).isEqualTo(1);
      assertThat(store.get("a")).hasSize(600);
    }
  }

  @Test
  void aHalfSentFrameIsClosedAfterTheIdleTimeout() throws Exception {
    start(TcpStoreServerOptions.builder().frameIdleTimeout(Duration.ofMillis(300)));
    try (TcpStore store = client();
        Socket s = raw()) {
      s.getOutputStream().write(Hex.bytes("01 0500000000000000 2f68"));
      long t0 = System.nanoTime();
      assertClosed(s);
      assertThat(Duration.ofNanos(System.nanoTime() - t0)).isGreaterThan(Duration.ofMillis(250));
      assertThat(rejected("frame_timeout")).isEqualTo(1);
      assertThat(store.add("still", 1)).isEqualTo(1);
    }
  }

  @Test
  void aClientThatNeverReadsIsPausedThenClosed() throws Exception {
    start(
        TcpStoreServerOptions.builder()
            .maxQueuedReplyBytes(64 * 1024)
            .replyDrainTimeout(Duration.ofMillis(500)));
    try (TcpStore store = client()) {
      store.set("fat", new byte[60_000]);
      try (Socket s = raw()) {
        s.setReceiveBufferSize(4096);
        OutputStream out = s.getOutputStream();
        byte[] get = Hex.bytes("03 0400000000000000 2f666174");
        byte[] many = new byte[get.length * 2000];
        for (int i = 0; i < 2000; i++) {
          System.arraycopy(get, 0, many, i * get.length, get.length);
        }
        Thread writer =
            Thread.ofPlatform()
                .start(
                    () -> {
                      try {
                        out.write(many);
                      } catch (IOException e) {
                        // closed by the server
                      }
                    });
        Await.until(
            "the connection is closed for not reading",
            Duration.ofSeconds(20),
            () -> rejected("drain_timeout") == 1);
        writer.join(Duration.ofSeconds(10));
        assertThat(writer.isAlive()).isFalse();
      }
      // It never held more than its limit plus one reply.
      assertThat(store.add("fine", 1)).isEqualTo(1);
      Await.until(
          "its memory is given back",
          Duration.ofSeconds(10),
          () -> registry.get("rdzv.store.memory.held").tag("kind", "replies").gauge().value() == 0);
    }
  }

  @Test
  void storedDataPastHalfTheBudgetIsRefused() throws Exception {
    start(TcpStoreServerOptions.builder().memoryBudget(2 * 1024 * 1024));
    try (TcpStore store = client()) {
      store.set("first", new byte[700_000]);
      try (TcpStore other = client()) {
        org.assertj.core.api.Assertions.assertThatThrownBy(
                () -> {
                  other.set("second", new byte[700_000]);
                  other.get("second");
                })
            .isInstanceOf(org.rdzv.api.StoreException.class);
      }
      assertThat(rejected("memory")).isEqualTo(1);
      assertThat(store.get("first")).hasSize(700_000);
      store.deleteKey("first");
      store.set("second", new byte[700_000]);
      assertThat(store.numKeys()).isEqualTo(1);
    }
  }

  @Test
  void connectionsPastTheCapAreClosedAtOnce() throws Exception {
    start(TcpStoreServerOptions.builder().maxConnections(2));
    try (TcpStore a = client();
        TcpStore b = client();
        Socket third = raw()) {
      assertClosed(third);
      assertThat(
              registry
                  .get("rdzv.store.connections.rejected")
                  .tag("reason", "limit")
                  .counter()
                  .count())
          .isEqualTo(1);
      assertThat(a.add("n", 1) + b.add("n", 1)).isEqualTo(3);
    }
  }

  @Test
  void closingCompletesTheTerminationNormallyAndRemovesTheMeters() throws Exception {
    start(TcpStoreServerOptions.builder());
    assertThat(registry.find("rdzv.store.connections").gauge()).isNotNull();
    server.close();
    server.termination().toCompletableFuture().get(10, java.util.concurrent.TimeUnit.SECONDS);
    assertThat(server.failure()).isEmpty();
    assertThat(server.awaitTermination(Duration.ofSeconds(1))).isTrue();
    assertThat(registry.find("rdzv.store.connections").gauge()).isNull();
  }
}
