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
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.rdzv.api.StoreTimeoutException;
import org.rdzv.testing.FreePort;
import org.rdzv.testing.PythonProcess;
import org.rdzv.testing.Torch;

/**
 * Interoperability with real PyTorch 1.13 and 2.6 (Debian's python3-torch) in both directions:
 * their TCPStore clients on our server, our client on their server, a gloo job on our server.
 */
class PyTorchInteropTest {
  private static final Duration PY = Duration.ofSeconds(60);
  private static final byte[] JAVA_VALUE = {0, 1, 2, (byte) 0xff, (byte) 0x80, 'x'};

  @ParameterizedTest
  @EnumSource(Torch.class)
  void torchClientAgainstOurServer(Torch torch) {
    torch.require();
    try (TcpStoreServer server = TcpStoreServer.start("", 0);
        TcpStore java =
            TcpStore.connect(
                TcpStoreOptions.builder("127.0.0.1", server.port())
                    .protocol(StoreProtocol.V1_13)
                    .timeout(Duration.ofSeconds(10))
                    .build());
        PythonProcess py =
            PythonProcess.start(
                torch,
                PythonProcess.resource(getClass(), "/py/torch_client.py"),
                List.of(Integer.toString(server.port()), Hex.of(JAVA_VALUE)),
                Map.of())) {
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
      if (torch.is2x()) {
        assertThat(py.lines())
            .contains("OK multi_set-multi_get", "OK append", "OK check-api", "OK cancel-wait");
        assertThat(java.getString("ap")).isEqualTo("abc");
        assertThat(java.getString("m2")).isEqualTo("y22");
      }
      // What Python wrote is readable by our client, byte for byte.
      assertThat(java.get("py/ключ")).containsExactly(0, 255, 1, 254);
      assertThat(java.getString("ключ/ü😀")).isEqualTo("värde");
      assertThat(java.getString("cnt")).isEqualTo("4");
      assertThat(server.isRunning()).isTrue();
    }
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void glooProcessGroupOnOurStore(Torch torch) throws Exception {
    torch.require();
    try (TcpStoreServer server = TcpStoreServer.start("", 0)) {
      String script = PythonProcess.resource(getClass(), "/py/torch_gloo_worker.py");
      java.util.List<PythonProcess> ranks = new java.util.ArrayList<>();
      try {
        for (int rank = 0; rank < 2; rank++) {
          ranks.add(
              PythonProcess.start(
                  torch,
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
      // The ranks' keys are where PyTorch puts them: 1.13 under the agent-store prefix; 2.x
      // without one (it expects a fresh store per attempt).
      String prefix = torch.is2x() ? "default_pg/" : "/worker/attempt_0/default_pg/";
      try (TcpStore java = TcpStore.connect("127.0.0.1", server.port())) {
        assertThat(java.listKeys()).anyMatch(k -> k.startsWith(prefix));
      }
    }
  }

  /** Each PyTorch with its own family forced, and detected. */
  static Stream<Arguments> torchesAndProtocols() {
    return Stream.of(
        Arguments.of(Torch.V1_13, StoreProtocol.V1_13),
        Arguments.of(Torch.V1_13, StoreProtocol.AUTO),
        Arguments.of(Torch.V2_6, StoreProtocol.V2),
        Arguments.of(Torch.V2_6, StoreProtocol.AUTO));
  }

  static PythonProcess torchServer(Torch torch, int port) {
    PythonProcess py =
        PythonProcess.start(
            torch,
            PythonProcess.resource(PyTorchInteropTest.class, "/py/torch_server.py"),
            List.of(Integer.toString(port)),
            Map.of());
    py.awaitLine("READY"::equals, PY);
    return py;
  }

  @ParameterizedTest(name = "{0} server, store_protocol={1}")
  @MethodSource("torchesAndProtocols")
  void ourClientAgainstTorchServer(Torch torch, StoreProtocol protocol) throws Exception {
    torch.require();
    int port = FreePort.next();
    try (PythonProcess py = torchServer(torch, port)) {
      TcpStoreOptions options =
          TcpStoreOptions.builder("127.0.0.1", port)
              .protocol(protocol)
              .timeout(Duration.ofSeconds(10))
              .build();
      try (TcpStore a = TcpStore.connect(options);
          TcpStore b = TcpStore.connect(options)) {
        assertThat(a.protocol()).isEqualTo(torch.is2x() ? StoreProtocol.V2 : StoreProtocol.V1_13);
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

        // Timeouts: the 1.13 client reconnects, so the server's late answer cannot desync it; the
        // 2.x client cancels the wait.
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

        // multiGet/multiSet: MULTI_GET/MULTI_SET on 2.x, emulated with GET/SET on 1.13.
        a.multiSet(List.of("m1", "m2"), List.of(b("x1"), b("y22")));
        assertThat(b.multiGet(List.of("m1", "m2"))).containsExactly(b("x1"), b("y22"));

        if (torch.is2x()) {
          // 2.x only: APPEND; 2.x has no WATCH_KEY
          a.append("ap", b("a"));
          a.append("ap", b("bc"));
          assertThat(b.getString("ap")).isEqualTo("abc");
          assertThatThrownBy(() -> a.watchKey("wk", e -> {}))
              .isInstanceOf(UnsupportedOperationException.class);
        } else {

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
      }

      // World-size counting: two clients announce themselves as torch workers.
      TcpStoreOptions workers = options.toBuilder().worldSize(2).build();
      try (TcpStore w1 = TcpStore.connect(workers);
          TcpStore w2 = TcpStore.connect(workers)) {
        assertThat(rawGet(port, "init/", torch.is2x())).isEqualTo("2");
      }
    }
  }

  /**
   * Forced to 2.x against PyTorch 1.13's server: a one-line error naming the protocol at once, not
   * a timeout after retrying the handshake.
   */
  @Test
  void ourClientForcedTo2xAgainstA113ServerFailsAtOnceSayingSo() {
    Torch.V1_13.require();
    int port = FreePort.next();
    try (PythonProcess py = torchServer(Torch.V1_13, port)) {
      Duration timeout = Duration.ofSeconds(30);
      long start = System.nanoTime();
      assertThatThrownBy(
              () ->
                  TcpStore.connect(
                          TcpStoreOptions.builder("127.0.0.1", port)
                              .protocol(StoreProtocol.V2)
                              .timeout(timeout)
                              .build())
                      .close())
          .isInstanceOf(org.rdzv.api.StoreException.class)
          .hasMessage(
              "The store server at 127.0.0.1:"
                  + port
                  + " does not speak PyTorch 2.x's TCPStore protocol (store_protocol=2): it closed"
                  + " the connection at the 2.x handshake, as a PyTorch 1.13 server does; set"
                  + " store_protocol=1.13, or auto to detect it.");
      assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(timeout);
      assertThat(py.process().isAlive()).isTrue();
    }
  }

  /** Forced to 1.13 against PyTorch 2.6's server: the first request fails saying why. */
  @Test
  void ourClientForcedTo113AgainstA2xServerFailsSayingSo() {
    Torch.V2_6.require();
    int port = FreePort.next();
    try (PythonProcess py = torchServer(Torch.V2_6, port);
        TcpStore a =
            TcpStore.connect(
                TcpStoreOptions.builder("127.0.0.1", port)
                    .protocol(StoreProtocol.V1_13)
                    .timeout(Duration.ofSeconds(30))
                    .build())) {
      assertThatThrownBy(() -> a.compareSet("k", b(""), b("v")))
          .isInstanceOf(org.rdzv.api.StoreException.class)
          .hasMessageContaining("on the store at 127.0.0.1:" + port + " failed")
          .hasMessageEndingWith(
              "the server closed the connection at the first 1.13 request, as a PyTorch 2.x"
                  + " server does (it expects the 2.x handshake): set store_protocol=2, or auto to"
                  + " detect it");
    }
  }

  /** GET of a raw key (no "/" prefix), over a 1.13 connection or a 2.x one (VALIDATE first). */
  private static String rawGet(int port, String key, boolean v2) throws IOException {
    try (Socket s = new Socket("127.0.0.1", port)) {
      byte[] k = key.getBytes(UTF_8);
      ByteBuffer req = ByteBuffer.allocate(5 + 1 + 8 + k.length).order(ByteOrder.LITTLE_ENDIAN);
      if (v2) {
        req.put((byte) 0x00).putInt(0x3C85F7CE); // VALIDATE + magic; GET is 0x03 in 2.x
      }
      req.put((byte) (v2 ? 0x03 : 0x02)).putLong(k.length).put(k);
      s.getOutputStream().write(req.array(), 0, req.position());
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
