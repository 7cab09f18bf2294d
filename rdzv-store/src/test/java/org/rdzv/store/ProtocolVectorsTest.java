package org.rdzv.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.rdzv.store.Hex.bytes;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The byte vectors captured from real PyTorch (protocol reference §11), replayed through our
 * decoder and store: whole, byte by byte and in random fragments. The server must answer with
 * exactly the bytes PyTorch's server sent.
 */
class ProtocolVectorsTest {

  /** §11.1: a 1.13 client session against a fresh 1.13 server, in order. */
  static final String[][] V1_SESSION = {
    {"00 0200000000000000 2f6b 0200000000000000 7631", ""},
    {"05 0100000000000000 0200000000000000 2f6b", "00"},
    {"02 0200000000000000 2f6b", "0200000000000000 7631"},
    {"03 0400000000000000 2f636e74 0500000000000000", "0500000000000000"},
    {"03 | 0400000000000000 2f636e74 feffffffffffffff", "0300000000000000"},
    {
      "01 0200000000000000 2f6b 0200000000000000 7631 0200000000000000 7632",
      "0200000000000000 7632"
    },
    {
      "01 0200000000000000 2f6b 0200000000000000 7a7a 0200000000000000 7633",
      "0200000000000000 7632"
    },
    {
      "01 0800000000000000 2f6d697373696e67 0100000000000000 78 0100000000000000 79",
      "0100000000000000 78"
    },
    {"01 0500000000000000 2f6e65776b 0000000000000000 0100000000000000 79", "0100000000000000 79"},
    {"05 | 0100000000000000 0200000000000000 2f6b", "00"},
    {"05 | 0100000000000000 0600000000000000 2f6e65766572", ""},
    {"06", "0300000000000000"},
    {"08 | 0200000000000000 2f6b", "0100000000000000"},
    {"08 0200000000000000 2f6b", "0000000000000000"},
    {"05 0100000000000000 0900000000000000 2f6d697373696e6732", ""},
    {"00 | 0600000000000000 2f6166746572 0100000000000000 78", ""},
    {"05 0100000000000000 0600000000000000 2f6166746572", "00"},
    {"02 0600000000000000 2f6166746572", "0100000000000000 78"},
  };

  /** §11.2: a 2.5+ client session against a fresh 2.x (libuv) server, in order. */
  static final String[][] V2_SESSION = {
    {"00 cef7853c 0d 6e270000", "6e270000"},
    {"01 0200000000000000 2f6b 0200000000000000 7631", ""},
    {"06 0100000000000000 0200000000000000 2f6b", "00"},
    {"03 0200000000000000 2f6b", "0200000000000000 7631"},
    {"04 0400000000000000 2f636e74 0500000000000000", "0500000000000000"},
    {"04 0400000000000000 2f636e74 feffffffffffffff", "0300000000000000"},
    {
      "02 0200000000000000 2f6b 0200000000000000 7631 0200000000000000 7632",
      "0200000000000000 7632"
    },
    {
      "02 0800000000000000 2f6d697373696e67 0100000000000000 78 0100000000000000 79",
      "0100000000000000 78"
    },
    {"02 0500000000000000 2f6e65776b 0000000000000000 0100000000000000 79", "0100000000000000 79"},
    {"05 0100000000000000 0200000000000000 2f6b", "00"},
    {"05 0200000000000000 0200000000000000 2f6b 0500000000000000 2f6e6f7065", "01"},
    {"06 0100000000000000 0200000000000000 2f6b", "00"},
    {"06 0100000000000000 0600000000000000 2f6e65766572", ""},
    {"0c", "01"},
    {"07", "0300000000000000"},
    {"08 0200000000000000 2f6b", "0100000000000000"},
    {"08 0200000000000000 2f6b", "0000000000000000"},
    {"09 0300000000000000 2f6170 0200000000000000 6162", ""},
    {
      "0b 0200000000000000 0300000000000000 2f6d31 0200000000000000 7831 0300000000000000 2f6d32 0300000000000000 793232",
      ""
    },
    {"06 0200000000000000 0300000000000000 2f6d31 0300000000000000 2f6d32", "00"},
    {
      "0a 0200000000000000 0300000000000000 2f6d31 0300000000000000 2f6d32",
      "0200000000000000 7831 0300000000000000 793232"
    },
    {"0e 0200000000000000 2f71 0200000000000000 6531", ""},
    {"10 0200000000000000 2f71", "0100000000000000"},
    {"0f 0200000000000000 2f71", "0100000000000000 0200000000000000 6531"},
    {"0f 0200000000000000 2f71", "0000000000000000"},
    {"06 0100000000000000 0900000000000000 2f6d697373696e6732", ""},
    {"0c", "01"},
    {"03 0600000000000000 2f6e6f6b6579", "0000000000000000"},
    {"0c", "01"},
  };

  @ParameterizedTest
  @EnumSource(Harness.Split.class)
  void oneThirteenSessionAnswersLikePyTorch(Harness.Split split) throws Exception {
    replay(V1_SESSION, split, Family.V1);
  }

  @ParameterizedTest
  @EnumSource(Harness.Split.class)
  void twoXSessionAnswersLikePyTorch(Harness.Split split) throws Exception {
    replay(V2_SESSION, split, Family.V2);
  }

  @ParameterizedTest
  @EnumSource(Harness.Split.class)
  void wholeSessionInOneStream(Harness.Split split) throws Exception {
    // Pipelined: every request of the session concatenated, the replies likewise.
    for (String[][] session : new String[][][] {V1_SESSION, V2_SESSION}) {
      Harness h = new Harness(new StoreState());
      StringBuilder in = new StringBuilder();
      StringBuilder out = new StringBuilder();
      for (String[] row : session) {
        in.append(row[0]).append(' ');
        out.append(row[1]).append(' ');
      }
      h.feed(bytes(in.toString()), split);
      assertThat(Hex.of(h.output())).isEqualTo(Hex.of(bytes(out.toString())));
    }
  }

  private static void replay(String[][] session, Harness.Split split, Family family)
      throws Exception {
    Harness h = new Harness(new StoreState());
    for (String[] row : session) {
      h.feed(bytes(row[0]), split);
      assertThat(Hex.of(h.output())).as("reply to %s", row[0]).isEqualTo(Hex.of(bytes(row[1])));
    }
    assertThat(h.decoder.family()).isEqualTo(family);
    assertThat(h.decoder.pendingBytes()).isZero();
  }

  @ParameterizedTest
  @EnumSource(Harness.Split.class)
  void twoFourHandshakeWithoutPing(Harness.Split split) throws Exception {
    Harness h = new Harness(new StoreState());
    h.feed(bytes("00 cef7853c", "07"), split);
    assertThat(Hex.of(h.output())).isEqualTo("0000000000000000");
    assertThat(h.decoder.family()).isEqualTo(Family.V2);
  }

  @ParameterizedTest
  @EnumSource(Harness.Split.class)
  void oneThirteenRawRequests(Harness.Split split) throws Exception {
    StoreState state = new StoreState();
    Harness a = new Harness(state);
    a.feed(bytes("04 0100000000000000 0300000000000000 2f636b"), split);
    assertThat(Hex.of(a.output())).isEqualTo("01");
    a.feed(bytes("00 0300000000000000 2f636b 0100000000000000 31"), split);
    a.feed(bytes("04 0100000000000000 0300000000000000 2f636b"), split);
    assertThat(Hex.of(a.output())).isEqualTo("00");
    a.feed(bytes("04 0000000000000000"), split);
    assertThat(Hex.of(a.output())).isEqualTo("00");

    // WATCH_KEY on a third connection, then changes from another one.
    Harness watcher = new Harness(state);
    watcher.feed(bytes("07 0300000000000000 2f776b"), split);
    assertThat(Hex.of(watcher.output())).isEqualTo("03");
    a.feed(bytes("00 0300000000000000 2f776b 0100000000000000 41"), split);
    assertThat(Hex.of(watcher.output()))
        .isEqualTo(
            Hex.of(bytes("01 0300000000000000 2f776b 0000000000000000 0100000000000000 41")));
    a.feed(bytes("00 0300000000000000 2f776b 0100000000000000 42"), split);
    assertThat(Hex.of(watcher.output()))
        .isEqualTo(
            Hex.of(bytes("00 0300000000000000 2f776b 0100000000000000 41 0100000000000000 42")));
    a.feed(bytes("08 0300000000000000 2f776b"), split);
    assertThat(Hex.of(a.output())).isEqualTo("0100000000000000");
    assertThat(Hex.of(watcher.output()))
        .isEqualTo(
            Hex.of(bytes("02 0300000000000000 2f776b 0100000000000000 42 0000000000000000")));

    // Worker init after the master's own +1.
    Harness master = new Harness(state);
    master.feed(bytes("03 0500000000000000 696e69742f 0100000000000000"), split);
    assertThat(Hex.of(master.output())).isEqualTo("0100000000000000");
    Harness worker = new Harness(state);
    worker.feed(bytes("03 0500000000000000 696e69742f 0100000000000000"), split);
    assertThat(Hex.of(worker.output())).isEqualTo("0200000000000000");
  }

  @ParameterizedTest
  @EnumSource(Harness.Split.class)
  void oneThirteenClosesWhereThe113ServerCloses(Harness.Split split) throws Exception {
    StoreState state = new StoreState();
    Harness setter = new Harness(state);
    setter.feed(bytes("00 0300000000000000 2f776b 0100000000000000 42"), split);

    Harness addOnText = new Harness(state);
    assertThatThrownBy(
            () -> addOnText.feed(bytes("03 0300000000000000 2f776b 0500000000000000"), split))
        .isInstanceOf(ProtocolException.class)
        .hasMessageContaining("not a number");

    Harness getMissing = new Harness(state);
    assertThatThrownBy(() -> getMissing.feed(bytes("02 0600000000000000 2f6e6f6b6579"), split))
        .isInstanceOf(ProtocolException.class)
        .hasMessageContaining("missing key");

    for (String unknown : new String[] {"0d", "0c", "09"}) {
      Harness h = new Harness(state);
      assertThatThrownBy(() -> h.feed(bytes(unknown), split))
          .isInstanceOf(ProtocolException.class)
          .hasMessageContaining("unknown command byte 0x" + unknown);
    }
  }

  @ParameterizedTest
  @EnumSource(Harness.Split.class)
  void waitSatisfiedBeforeCancelAnswersBoth(Harness.Split split) throws Exception {
    StoreState state = new StoreState();
    Harness waiter = new Harness(state);
    waiter.feed(bytes("00 cef7853c", "06 0100000000000000 0200000000000000 2f72"), split);
    assertThat(waiter.output()).isEmpty();
    Harness setter = new Harness(state);
    setter.feed(bytes("00 cef7853c", "01 0200000000000000 2f72 0100000000000000 31"), split);
    waiter.feed(bytes("0c"), split);
    assertThat(Hex.of(waiter.output())).isEqualTo("0001");
  }
}
