package org.rdzv.store;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.rdzv.api.StoreTimeoutException;
import org.rdzv.testing.Await;

/**
 * Our client's bytes on the wire, recorded by a proxy, must equal what PyTorch's clients sent in
 * the captures of the protocol reference (§11).
 */
class ClientWireTest {

  private static void assertSent(RecordingProxy proxy, byte[] expected) {
    Await.until(
        "the proxy saw " + expected.length + " bytes",
        Duration.ofSeconds(5),
        () -> proxy.clientBytes().length >= expected.length);
    assertThat(Hex.of(proxy.clientBytes())).isEqualTo(Hex.of(expected));
  }

  private static String column(String[][] session, int from, int to) {
    StringBuilder s = new StringBuilder();
    for (int i = from; i < to; i++) {
      s.append(session[i][0]).append(' ');
    }
    return s.toString();
  }

  @Test
  void oneThirteenClientSendsPyTorchsBytes() throws Exception {
    try (TcpStoreServer server = TcpStoreServer.start("127.0.0.1", 0);
        RecordingProxy proxy = new RecordingProxy(server.port());
        TcpStore c =
            TcpStore.connect(
                TcpStoreOptions.builder("127.0.0.1", proxy.port())
                    .protocol(StoreProtocol.V1_13)
                    .timeout(Duration.ofSeconds(5))
                    .build())) {
      c.set("k", "v1");
      assertThat(c.getString("k")).isEqualTo("v1");
      assertThat(c.add("cnt", 5)).isEqualTo(5);
      assertThat(c.add("cnt", -2)).isEqualTo(3);
      assertThat(c.compareSet("k", b("v1"), b("v2"))).isEqualTo(b("v2"));
      assertThat(c.compareSet("k", b("zz"), b("v3"))).isEqualTo(b("v2"));
      assertThat(c.compareSet("missing", b("x"), b("y"))).isEqualTo(b("x"));
      assertThat(c.compareSet("newk", b(""), b("y"))).isEqualTo(b("y"));
      c.await(List.of("k"));
      assertThatThrownBy(() -> c.await(List.of("never"), Duration.ofMillis(200)))
          .isInstanceOf(StoreTimeoutException.class);
      assertThat(c.numKeys()).isEqualTo(3);
      assertThat(c.deleteKey("k")).isTrue();
      assertThat(c.deleteKey("k")).isFalse();
      c.setTimeout(Duration.ofMillis(200));
      assertThatThrownBy(() -> c.get("missing2")).isInstanceOf(StoreTimeoutException.class);
      c.setTimeout(Duration.ofSeconds(5));
      c.set("after", "x");
      assertThat(c.getString("after")).isEqualTo("x");
      assertSent(proxy, Hex.bytes(column(ProtocolVectorsTest.V1_SESSION, 0, 18)));
      // 1.13 has no cancel: each timed-out wait cost a fresh connection.
      assertThat(proxy.connections()).isEqualTo(3);
    }
  }

  @Test
  void twoXClientSendsPyTorchsBytes() throws Exception {
    try (TcpStoreServer server = TcpStoreServer.start("127.0.0.1", 0);
        RecordingProxy proxy = new RecordingProxy(server.port());
        TcpStore c =
            TcpStore.connect(
                TcpStoreOptions.builder("127.0.0.1", proxy.port())
                    .protocol(StoreProtocol.V2)
                    .worldSize(2)
                    .timeout(Duration.ofSeconds(5))
                    .build())) {
      c.set("k", "v1");
      assertThat(c.getString("k")).isEqualTo("v1");
      assertThat(c.add("cnt", 5)).isEqualTo(5);
      assertThat(c.check(List.of("k", "nope"))).isFalse();
      assertThatThrownBy(() -> c.await(List.of("never"), Duration.ofMillis(200)))
          .isInstanceOf(StoreTimeoutException.class);
      c.append("ap", b("ab"));
      c.multiSet(List.of("m1", "m2"), List.of(b("x1"), b("y22")));
      assertThat(c.multiGet(List.of("m1", "m2"))).containsExactly(b("x1"), b("y22"));
      c.queuePush("q", b("e1"));
      assertThat(c.queueLen("q")).isEqualTo(1);
      assertThat(c.queuePop("q", false)).isEqualTo(b("e1"));
      assertThat(c.queuePop("q", false)).isNull();
      byte[] nonce =
          ByteBuffer.allocate(4)
              .order(ByteOrder.LITTLE_ENDIAN)
              .putInt((int) ProcessHandle.current().pid())
              .array();
      String[][] v = ProtocolVectorsTest.V2_SESSION;
      assertSent(
          proxy,
          Hex.bytes(
              "00 cef7853c 0d" + Hex.of(nonce),
              "04 0500000000000000 696e69742f 0100000000000000",
              v[1][0],
              v[2][0],
              v[3][0],
              v[4][0],
              v[10][0],
              v[12][0],
              v[13][0],
              v[17][0],
              v[18][0],
              v[19][0],
              v[20][0],
              v[21][0],
              v[22][0],
              v[23][0],
              v[24][0]));
      assertThat(proxy.connections()).isEqualTo(1);
    }
  }

  private static byte[] b(String s) {
    return s.getBytes(UTF_8);
  }
}
