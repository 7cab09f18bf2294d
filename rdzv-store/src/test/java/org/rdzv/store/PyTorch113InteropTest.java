package org.rdzv.store;

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
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.rdzv.api.StoreTimeoutException;
import org.rdzv.testing.FreePort;
import org.rdzv.testing.Peers;
import org.rdzv.testing.PythonProcess;

/** Interoperability with a real PyTorch 1.13 (Debian python3-torch) in both directions. */
class PyTorch113InteropTest {
  private static final Duration PY = Duration.ofSeconds(60);
  private static final byte[] JAVA_VALUE = {0, 1, 2, (byte) 0xff, (byte) 0x80, 'x'};

  @Test
  void torchClientAgainstOurServer() {
    Peers.requireTorch();
    try (TcpStoreServer server = TcpStoreServer.start("", 0);
        TcpStore java =
            TcpStore.connect(
                TcpStoreOptions.builder("127.0.0.1", server.port())
                    .protocol(StoreProtocol.V1_13)
                    .timeout(Duration.ofSeconds(10))
                    .build());
        PythonProcess py =
            PythonProcess.start(
                PythonProcess.resource(getClass(), "/py/torch113_client.py"),
                List.of(Integer.toString(server.port()), Hex.of(JAVA_VALUE)))) {
      java.set("java/ключ", JAVA_VALUE);
      py.awaitLine("WAITING"::equals, PY);
      // The Python client's blocking get is parked on our server, not busy-polling.
      org.rdzv.testing.Await.until(
          "python's get parked on the server",
          Duration.ofSeconds(10),
          () -> server.pendingWaits() >= 1);
      java.set("late", "released");
      assertThat(py.awaitExit(PY)).as(py.output()).isZero();
      assertThat(py.lines())
          .contains(
              "OK set-get",
              "OK add",
              "OK compare_set",
              "OK num_keys",
              "OK delete_key",
              "OK wait",
              "OK wait-timeout",
              "OK get-timeout",
              "OK binary-and-1MiB",
              "OK unicode-keys",
              "OK blocking-get-released",
              "OK init-counting",
              "OK check",
              "OK watch-key",
              "OK bad-connection-isolated",
              "DONE");
      // What Python wrote is readable by our client, byte for byte.
      assertThat(java.get("py/ключ")).containsExactly(0, 255, 1, 254);
      assertThat(java.getString("ключ/ü😀")).isEqualTo("värde");
      assertThat(java.getString("cnt")).isEqualTo("4");
      assertThat(server.isRunning()).isTrue();
    }
  }

  @Test
  void glooProcessGroupOnOurStore() throws Exception {
    Peers.requireTorch();
    try (TcpStoreServer server = TcpStoreServer.start("", 0)) {
      String script = PythonProcess.resource(getClass(), "/py/torch113_gloo_worker.py");
      java.util.List<PythonProcess> ranks = new java.util.ArrayList<>();
      try {
        for (int rank = 0; rank < 2; rank++) {
          ranks.add(
              PythonProcess.start(
                  script,
                  List.of(),
                  java.util.Map.of(
                      "RANK", Integer.toString(rank),
                      "LOCAL_RANK", Integer.toString(rank),
                      "WORLD_SIZE", "2",
                      "MASTER_ADDR", "127.0.0.1",
                      "MASTER_PORT", Integer.toString(server.port()),
                      "TORCHELASTIC_USE_AGENT_STORE", "True",
                      "TORCHELASTIC_RESTART_COUNT", "0")));
        }
        for (PythonProcess p : ranks) {
          assertThat(p.awaitExit(PY)).as(p.output()).isZero();
          assertThat(p.lines()).anyMatch(l -> l.startsWith("OK rank"));
        }
      } finally {
        ranks.forEach(PythonProcess::close);
      }
      // The ranks' keys are where PyTorch puts them: under the agent-store prefix.
      try (TcpStore java = TcpStore.connect("127.0.0.1", server.port())) {
        assertThat(java.listKeys()).anyMatch(k -> k.startsWith("/worker/attempt_0/default_pg/"));
      }
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = StoreProtocol.class,
      names = {"V1_13", "AUTO"})
  void ourClientAgainstTorchServer(StoreProtocol protocol) throws Exception {
    Peers.requireTorch();
    int port = FreePort.next();
    try (PythonProcess py =
        PythonProcess.start(
            PythonProcess.resource(getClass(), "/py/torch113_server.py"),
            List.of(Integer.toString(port)))) {
      py.awaitLine("READY"::equals, PY);
      TcpStoreOptions options =
          TcpStoreOptions.builder("127.0.0.1", port)
              .protocol(protocol)
              .timeout(Duration.ofSeconds(10))
              .build();
      try (TcpStore a = TcpStore.connect(options);
          TcpStore b = TcpStore.connect(options)) {
        assertThat(a.protocol()).isEqualTo(StoreProtocol.V1_13);
        long base = a.numKeys();
        a.set("k", "v1");
        assertThat(b.getString("k")).isEqualTo("v1");
        assertThat(a.add("cnt", 5)).isEqualTo(5);
        assertThat(b.add("cnt", -2)).isEqualTo(3);
        assertThat(a.compareSet("k", b("v1"), b("v2"))).isEqualTo(b("v2"));
        assertThat(a.compareSet("k", b("zz"), b("v3"))).isEqualTo(b("v2"));
        assertThat(a.compareSet("missing", b("x"), b("y"))).isEqualTo(b("x"));
        assertThat(a.compareSet("newk", b(""), b("y"))).isEqualTo(b("y"));
        assertThat(a.check(List.of("k", "cnt"))).isTrue();
        assertThat(a.check(List.of("k", "missing"))).isFalse();
        assertThat(a.check(List.of())).isTrue();
        a.await(List.of("k", "newk"));
        assertThat(a.numKeys()).isEqualTo(base + 3);
        assertThat(a.deleteKey("k")).isTrue();
        assertThat(a.deleteKey("k")).isFalse();

        // Timeouts: the 1.13 client reconnects, so the server's late answer cannot desync it.
        assertThatThrownBy(() -> a.await(List.of("never"), Duration.ofMillis(300)))
            .isInstanceOf(StoreTimeoutException.class);
        b.set("never", "now");
        assertThat(a.add("cnt", 0)).isEqualTo(3);
        a.setTimeout(Duration.ofMillis(300));
        assertThatThrownBy(() -> a.get("missing2")).isInstanceOf(StoreTimeoutException.class);
        a.setTimeout(Duration.ofSeconds(10));

        // Blocking get released by the other client.
        CompletableFuture<String> late = CompletableFuture.supplyAsync(() -> a.getString("late"));
        assertThat(b.check(List.of("late"))).isFalse();
        b.set("late", "released");
        assertThat(late.get(10, TimeUnit.SECONDS)).isEqualTo("released");

        // Binary values, 1 MiB, unicode keys.
        byte[] binary = new byte[256 * 4];
        for (int i = 0; i < binary.length; i++) {
          binary[i] = (byte) i;
        }
        byte[] big = new byte[1 << 20];
        new Random(7).nextBytes(big);
        a.set("bin", binary);
        a.set("big", big);
        a.set("ключ/ü😀", "värde");
        assertThat(b.get("bin")).isEqualTo(binary);
        assertThat(b.get("big")).isEqualTo(big);
        assertThat(b.getString("ключ/ü😀")).isEqualTo("värde");

        // multiGet/multiSet are emulated with GET/SET on 1.13.
        a.multiSet(List.of("m1", "m2"), List.of(b("x1"), b("y22")));
        assertThat(b.multiGet(List.of("m1", "m2"))).containsExactly(b("x1"), b("y22"));

        // WATCH_KEY over the callback connection, against PyTorch's own server.
        LinkedBlockingQueue<WatchEvent> events = new LinkedBlockingQueue<>();
        try (AutoCloseable watch = a.watchKey("wk", events::add)) {
          b.set("wk", "A");
          b.compareSet("wk", b("A"), b("B"));
          b.deleteKey("wk");
          assertThat(events.poll(10, TimeUnit.SECONDS))
              .isEqualTo(new WatchEvent(WatchEvent.Type.KEY_CREATED, "wk", b(""), b("A")));
          assertThat(events.poll(10, TimeUnit.SECONDS))
              .isEqualTo(new WatchEvent(WatchEvent.Type.KEY_UPDATED, "wk", b("A"), b("B")));
          assertThat(events.poll(10, TimeUnit.SECONDS))
              .isEqualTo(new WatchEvent(WatchEvent.Type.KEY_DELETED, "wk", b("B"), b("")));
        }
      }

      // World-size counting: two clients announce themselves as torch workers.
      TcpStoreOptions workers = options.toBuilder().worldSize(2).build();
      try (TcpStore w1 = TcpStore.connect(workers);
          TcpStore w2 = TcpStore.connect(workers)) {
        assertThat(rawGet(port, "init/")).isEqualTo("2");
      }
    }
  }

  /** GET of a raw key (no "/" prefix) over a 1.13 connection. */
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

  private static byte[] b(String s) {
    return s.getBytes(UTF_8);
  }
}
