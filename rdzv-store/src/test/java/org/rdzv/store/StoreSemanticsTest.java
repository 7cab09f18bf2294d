package org.rdzv.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.rdzv.store.Hex.bytes;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Command semantics and limits of the decoder and the store, without sockets. */
class StoreSemanticsTest {

  private static byte[] frame(int code, Object... fields) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(code);
    for (Object f : fields) {
      if (f instanceof Long n) {
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(n).array());
      } else if (f instanceof String s) {
        byte[] b = s.getBytes(StandardCharsets.UTF_8);
        out.writeBytes(
            ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(b.length).array());
        out.writeBytes(b);
      } else if (f instanceof byte[] b) {
        out.writeBytes(
            ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(b.length).array());
        out.writeBytes(b);
      }
    }
    return out.toByteArray();
  }

  private static final byte[] V2_HELLO = bytes("00 cef7853c");

  @ParameterizedTest
  @CsvSource(
      delimiterString = "->",
      value = {
        "' 12' -> 13",
        "'+7' -> 8",
        "'12abc' -> 13",
        "'0x10' -> 1",
        "'-5' -> -4",
        "'\t\n 3' -> 4"
      })
  void addParsesLikeStoll(String stored, long expected) throws Exception {
    Harness h = new Harness(new StoreState());
    h.feed(frame(0x00, "/c", stored));
    h.feed(frame(0x03, "/c", 1L));
    assertThat(ByteBuffer.wrap(h.output()).order(ByteOrder.LITTLE_ENDIAN).getLong())
        .isEqualTo(expected);
    h.feed(frame(0x02, "/c"));
    byte[] out = h.output();
    assertThat(new String(out, 8, out.length - 8, StandardCharsets.US_ASCII))
        .isEqualTo(Long.toString(expected));
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "B", "-", " +", "99999999999999999999", "-99999999999999999999"})
  void addOnNonNumbersCloses(String stored) throws Exception {
    Harness h = new Harness(new StoreState());
    h.feed(frame(0x00, "/c", stored));
    assertThatThrownBy(() -> h.feed(frame(0x03, "/c", 1L))).isInstanceOf(ProtocolException.class);
  }

  @Test
  void addAtTheEdgesOfInt64() throws Exception {
    Harness h = new Harness(new StoreState());
    h.feed(frame(0x00, "/c", "-9223372036854775808"));
    h.feed(frame(0x03, "/c", 0L));
    assertThat(ByteBuffer.wrap(h.output()).order(ByteOrder.LITTLE_ENDIAN).getLong())
        .isEqualTo(Long.MIN_VALUE);
  }

  @Test
  void absurdLengthIsRefusedBeforeItsBytesArrive() {
    // A 2.x handshake read as 1.13: SET with a key length of about 2^53 — only 9 bytes sent.
    Harness h = new Harness(new StoreState());
    assertThatThrownBy(
            () -> h.feed(bytes("00 ce f7 85 3d 0d 6e 27 00"), Harness.Split.BYTE_BY_BYTE))
        .isInstanceOf(ProtocolException.class)
        .hasMessageContaining("key length");
  }

  @Test
  void keyValueAndCountLimits() throws Exception {
    Limits limits = new Limits(16, 32, 3);
    assertThatThrownBy(
            () ->
                new Harness(new StoreState(), limits).feed(frame(0x00, "/" + "k".repeat(16), "v")))
        .hasMessageContaining("key length 17 exceeds the limit of 16");
    new Harness(new StoreState(), limits).feed(frame(0x00, "k".repeat(16), "v".repeat(32)));
    assertThatThrownBy(
            () -> new Harness(new StoreState(), limits).feed(frame(0x00, "/k", "v".repeat(33))))
        .hasMessageContaining("value length 33");
    assertThatThrownBy(() -> new Harness(new StoreState(), limits).feed(frame(0x04, 4L)))
        .hasMessageContaining("key count 4");
    // Negative MULTI_SET count (2.x writes it as int64).
    Harness h = new Harness(new StoreState(), limits);
    assertThatThrownBy(() -> h.feed(concat(V2_HELLO, frame(0x0b, -1L))))
        .hasMessageContaining("key count 18446744073709551615");
  }

  @Test
  void defaultLimitsAreLibuvs() throws Exception {
    new Harness(new StoreState()).feed(frame(0x00, "k".repeat(8192), "v"));
    assertThatThrownBy(() -> new Harness(new StoreState()).feed(frame(0x00, "k".repeat(8193), "v")))
        .isInstanceOf(ProtocolException.class);
    // The value's declared length alone is enough to refuse it.
    byte[] header = frame(0x00, "/k", 8L * 1024 * 1024 + 1);
    assertThatThrownBy(() -> new Harness(new StoreState()).feed(header))
        .hasMessageContaining("value length 8388609");
  }

  @Test
  void secondValidateAndBadFirstBytes() throws Exception {
    Harness h = new Harness(new StoreState());
    assertThatThrownBy(() -> h.feed(concat(V2_HELLO, V2_HELLO)))
        .hasMessageContaining("VALIDATE after the handshake");
    // 00 + wrong magic is a 1.13 SET whose key length is far past the limit.
    Harness bad = new Harness(new StoreState());
    assertThatThrownBy(() -> bad.feed(bytes("00 11223344 00000000")))
        .hasMessageContaining("key length");
  }

  @Test
  void oneThirteenSetStartingLikeValidateIsStillASet() throws Exception {
    Harness h = new Harness(new StoreState());
    h.feed(frame(0x00, "/k", "v"), Harness.Split.BYTE_BY_BYTE);
    assertThat(h.decoder.family()).isEqualTo(Family.V1);
    assertThat(h.requests).hasSize(1);
    assertThat(h.state.numKeys()).isEqualTo(1);
  }

  @Test
  void waitCountsOnlyMissingKeysAndWakesOnce() throws Exception {
    StoreState state = new StoreState();
    Harness a = new Harness(state);
    a.feed(frame(0x00, "/w1", "x"));
    a.feed(frame(0x05, 3L, "/w1", "/w2", "/w3"));
    assertThat(a.output()).isEmpty();
    Harness b = new Harness(state);
    b.feed(frame(0x00, "/w2", "y"));
    assertThat(a.output()).isEmpty();
    b.feed(frame(0x03, "/w3", 1L));
    assertThat(Hex.of(a.output())).isEqualTo("00");
    b.feed(frame(0x00, "/w3", "again"));
    assertThat(a.output()).isEmpty();
    assertThat(state.pendingWaits()).isZero();
  }

  @Test
  void creatingCompareSetWakesWaitersAndAFailingOneDoesNot() throws Exception {
    StoreState state = new StoreState();
    Harness a = new Harness(state);
    a.feed(concat(V2_HELLO, frame(0x06, 1L, "/casw")));
    Harness b = new Harness(state);
    b.feed(concat(V2_HELLO, frame(0x02, "/casw", "x", "y")));
    assertThat(a.output()).isEmpty();
    b.feed(frame(0x02, "/casw", "", "y"));
    assertThat(Hex.of(a.output())).isEqualTo("00");
  }

  @Test
  void queuePushWakesOneWaiter() throws Exception {
    StoreState state = new StoreState();
    Harness a = new Harness(state);
    Harness b = new Harness(state);
    a.feed(concat(V2_HELLO, frame(0x06, 1L, "/q")));
    b.feed(concat(V2_HELLO, frame(0x06, 1L, "/q")));
    Harness c = new Harness(state);
    c.feed(concat(V2_HELLO, frame(0x0e, "/q", "e1")));
    assertThat(Hex.of(a.output())).isEqualTo("00");
    assertThat(b.output()).isEmpty();
    // A non-empty queue counts as present for CHECK; GETNUMKEYS and LIST ignore queues.
    c.feed(frame(0x05, 1L, "/q"));
    assertThat(Hex.of(c.output())).isEqualTo("00");
    c.feed(frame(0x07));
    c.feed(frame(0x11));
    assertThat(Hex.of(c.output())).isEqualTo("0000000000000000" + "0000000000000000");
  }

  @Test
  void disconnectDropsWaitsAndWatchesButKeepsData() throws Exception {
    StoreState state = new StoreState();
    Harness a = new Harness(state);
    a.feed(frame(0x00, "/kept", "v"));
    a.feed(frame(0x05, 1L, "/gone"));
    a.feed(frame(0x07, "/kept"));
    assertThat(state.pendingWaits()).isEqualTo(1);
    state.disconnected(a.session);
    assertThat(state.pendingWaits()).isZero();
    Harness b = new Harness(state);
    b.feed(frame(0x00, "/kept", "w"));
    b.feed(frame(0x00, "/gone", "w"));
    assertThat(a.output()).hasSize(1); // only the WATCH_KEY acknowledgement from before
    b.feed(frame(0x02, "/kept"));
    assertThat(Hex.of(b.output())).isEqualTo("0100000000000000" + "77");
  }

  @Test
  void cancelWaitDropsOnlyThisConnectionsWaits() throws Exception {
    StoreState state = new StoreState();
    Harness a = new Harness(state);
    Harness b = new Harness(state);
    a.feed(concat(V2_HELLO, frame(0x06, 1L, "/k")));
    b.feed(concat(V2_HELLO, frame(0x06, 1L, "/k")));
    a.feed(frame(0x0c));
    assertThat(Hex.of(a.output())).isEqualTo("01");
    b.feed(frame(0x01, "/k", "v"));
    assertThat(Hex.of(b.output())).isEqualTo("00");
    assertThat(a.output()).isEmpty();
  }

  @Test
  void appendCreatesAndExtendsAndWakes() throws Exception {
    StoreState state = new StoreState();
    Harness a = new Harness(state);
    a.feed(concat(V2_HELLO, frame(0x06, 1L, "/ap")));
    Harness b = new Harness(state);
    b.feed(
        concat(V2_HELLO, frame(0x09, "/ap", "ab"), frame(0x09, "/ap", "cd"), frame(0x03, "/ap")));
    assertThat(Hex.of(a.output())).isEqualTo("00");
    assertThat(new String(b.output(), 8, 4, StandardCharsets.US_ASCII)).isEqualTo("abcd");
  }

  private static byte[] concat(byte[]... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] p : parts) {
      out.writeBytes(p);
    }
    return out.toByteArray();
  }
}
