package org.rdzv.store.torch2;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.DataInputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.rdzv.api.StoreException;
import org.rdzv.api.StoreTimeoutException;
import org.rdzv.store.StoreProtocol;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreOptions;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.testing.Await;
import org.rdzv.testing.FreePort;

/**
 * Interoperability with libtorch 2.10's own TCPStore (org.bytedeco:pytorch, run in a forked JVM by
 * {@link Torch2Oracle}). Compiled and run only with {@code mvn -Ptorch2}.
 */
class LibTorch2InteropTest {
  private static final Duration ORACLE = Duration.ofSeconds(120);

  @Test
  void libtorchClientAgainstOurServer() {
    try (TcpStoreServer server = TcpStoreServer.start("", 0);
        TcpStore java =
            TcpStore.connect(
                TcpStoreOptions.builder("127.0.0.1", server.port())
                    .protocol(StoreProtocol.V2)
                    .build());
        OracleProcess oracle = OracleProcess.start("client", Integer.toString(server.port()))) {
      oracle.awaitLine("WAITING"::equals, ORACLE);
      Await.until(
          "libtorch's get parked on our server",
          Duration.ofSeconds(10),
          () -> server.pendingWaits() >= 1);
      java.set("late", "released");
      oracle.awaitLine("DONE"::equals, ORACLE);
      assertThat(oracle.lines())
          .contains(
              "OK set-get",
              "OK add",
              "OK compareSet",
              "OK check",
              "OK wait",
              "OK wait-timeout",
              "OK after-timeout",
              "OK getNumKeys",
              "OK deleteKey",
              "OK append",
              "OK queues",
              "OK listKeys",
              "OK 1MiB",
              "OK unicode",
              "OK blocking-get-released",
              "OK get-timeout");
      // What libtorch wrote, our client reads.
      assertThat(java.getString("ap")).isEqualTo("abcd");
      assertThat(java.getString("ключ/ü😀")).isEqualTo("värde");
      assertThat(server.isRunning()).isTrue();
    }
  }

  @Test
  void libtorchWorkersCountThemselvesUnderInit() throws Exception {
    try (TcpStoreServer server = TcpStoreServer.start("127.0.0.1", 0)) {
      for (int i = 0; i < 2; i++) {
        try (OracleProcess worker =
            OracleProcess.start("worker", Integer.toString(server.port()), "2")) {
          worker.awaitLine("JOINED"::equals, ORACLE);
        }
      }
      assertThat(rawGet(server.port(), "init/")).isEqualTo("2");
    }
  }

  @ParameterizedTest
  @CsvSource({"libuv, V2", "libuv, AUTO", "legacy, V2", "legacy, AUTO"})
  void ourClientAgainstLibtorchServer(String backend, StoreProtocol protocol) throws Exception {
    int port = FreePort.next();
    try (OracleProcess oracle = OracleProcess.start("server", Integer.toString(port), backend)) {
      oracle.awaitLine(l -> l.startsWith("READY"), ORACLE);
      TcpStoreOptions options =
          TcpStoreOptions.builder("127.0.0.1", port)
              .protocol(protocol)
              .timeout(Duration.ofSeconds(10))
              .build();
      try (TcpStore a = TcpStore.connect(options);
          TcpStore b = TcpStore.connect(options)) {
        assertThat(a.protocol()).isEqualTo(StoreProtocol.V2);
        a.set("k", "v1");
        assertThat(b.getString("k")).isEqualTo("v1");
        assertThat(a.add("cnt", 5)).isEqualTo(5);
        assertThat(b.add("cnt", -2)).isEqualTo(3);
        assertThat(a.compareSet("k", b("v1"), b("v2"))).isEqualTo(b("v2"));
        assertThat(a.compareSet("k", b("zz"), b("v3"))).isEqualTo(b("v2"));
        assertThat(a.compareSet("missing", b("x"), b("y"))).isEqualTo(b("x"));
        assertThat(a.compareSet("newk", b(""), b("y"))).isEqualTo(b("y"));
        assertThat(a.check(List.of("k", "cnt"))).isTrue();
        assertThat(a.check(List.of("k", "nope"))).isFalse();
        a.await(List.of("k", "newk"));
        assertThat(a.numKeys()).isEqualTo(3);
        assertThat(a.deleteKey("k")).isTrue();
        assertThat(a.deleteKey("k")).isFalse();
        a.append("ap", b("ab"));
        a.append("ap", b("cd"));
        // Requests of one connection are ordered; across connections they are not.
        assertThat(a.getString("ap")).isEqualTo("abcd");
        a.multiSet(List.of("m1", "m2"), List.of(b("x1"), b("y22")));
        assertThat(b.multiGet(List.of("m1", "m2"))).containsExactly(b("x1"), b("y22"));

        // A timed-out wait is cancelled (CANCEL_WAIT), and the connection stays in sync.
        assertThatThrownBy(() -> a.await(List.of("never"), Duration.ofMillis(300)))
            .isInstanceOf(StoreTimeoutException.class);
        b.set("never", "now");
        assertThat(a.add("cnt", 0)).isEqualTo(3);

        CompletableFuture<String> late = CompletableFuture.supplyAsync(() -> a.getString("late"));
        assertThat(b.check(List.of("late"))).isFalse();
        b.set("late", "released");
        assertThat(late.get(10, TimeUnit.SECONDS)).isEqualTo("released");

        byte[] big = new byte[1 << 20];
        new Random(5).nextBytes(big);
        a.set("big", big);
        assertThat(b.get("big")).isEqualTo(big);
        a.set("ключ/ü😀", "värde");
        assertThat(b.getString("ключ/ü😀")).isEqualTo("värde");

        if (backend.equals("libuv")) {
          a.queuePush("q", b("e1"));
          assertThat(a.queueLen("q")).isEqualTo(1);
          assertThat(b.queuePop("q", true)).isEqualTo(b("e1"));
          assertThat(b.queuePop("q", false)).isNull();
          assertThat(a.listKeys()).contains("ap", "cnt", "newk", "m1", "m2", "big");
        } else {
          // The legacy backend closes the connection on queues and LIST; the client recovers.
          assertThatThrownBy(() -> a.queueLen("q")).isInstanceOf(StoreException.class);
          assertThat(a.add("cnt", 0)).isEqualTo(3);
        }
      }
      // World-size counting from our client, read back raw by a 2.x connection.
      TcpStoreOptions workers = options.toBuilder().worldSize(2).build();
      try (TcpStore w1 = TcpStore.connect(workers);
          TcpStore w2 = TcpStore.connect(workers)) {
        assertThat(rawAddV2(port, "init/", 0)).isEqualTo(2);
      }
    }
  }

  /** GET of a raw key (no "/" prefix) over a 1.13 connection to our server. */
  private static String rawGet(int port, String key) throws IOException {
    try (Socket s = new Socket("127.0.0.1", port)) {
      byte[] k = key.getBytes(UTF_8);
      ByteBuffer req = ByteBuffer.allocate(1 + 8 + k.length).order(ByteOrder.LITTLE_ENDIAN);
      req.put((byte) 0x02).putLong(k.length).put(k);
      s.getOutputStream().write(req.array());
      DataInputStream in = new DataInputStream(s.getInputStream());
      byte[] len = new byte[8];
      in.readFully(len);
      byte[] value = new byte[(int) ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getLong()];
      in.readFully(value);
      return new String(value, UTF_8);
    }
  }

  /** ADD on a raw key over a 2.x connection (VALIDATE, then ADD). */
  private static long rawAddV2(int port, String key, long delta) throws IOException {
    try (Socket s = new Socket("127.0.0.1", port)) {
      byte[] k = key.getBytes(UTF_8);
      ByteBuffer req = ByteBuffer.allocate(5 + 1 + 8 + k.length + 8).order(ByteOrder.LITTLE_ENDIAN);
      req.put((byte) 0x00)
          .putInt(0x3C85F7CE)
          .put((byte) 0x04)
          .putLong(k.length)
          .put(k)
          .putLong(delta);
      s.getOutputStream().write(req.array());
      byte[] reply = new DataInputStream(s.getInputStream()).readNBytes(8);
      return ByteBuffer.wrap(reply).order(ByteOrder.LITTLE_ENDIAN).getLong();
    }
  }

  private static byte[] b(String s) {
    return s.getBytes(UTF_8);
  }
}
