package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.HexFormat;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousStateException;

/** The pickles captured from PyTorch 1.13 (reference §4.3–4.6) decode, and re-encode losslessly. */
class StateCodecGoldenTest {
  static final NodeDescriptor A = new NodeDescriptor("node-a.example", 1234, 0);
  static final NodeDescriptor B = new NodeDescriptor("node-b.example", 5678, 0);
  static final NodeDescriptor C = new NodeDescriptor("node-c.example", 910, 1);

  static byte[] golden(String name) {
    try (InputStream in =
        StateCodecGoldenTest.class.getResourceAsStream("/golden/" + name + ".hex")) {
      return HexFormat.of()
          .parseHex(new String(in.readAllBytes(), StandardCharsets.US_ASCII).strip());
    } catch (IOException e) {
      throw new AssertionError(e);
    }
  }

  @Test
  void emptyState() {
    MutableState s = StateCodec.decode(golden("a"));
    assertThat(s.round).isZero();
    assertThat(s.complete).isFalse();
    assertThat(s.deadline).isNull();
    assertThat(s.closed).isFalse();
    assertThat(s.participants).isEmpty();
    assertThat(s.waitList).isEmpty();
    assertThat(s.lastHeartbeats).isEmpty();
    assertThat(s.dialect).isNull();
  }

  @Test
  void twoParticipants() {
    MutableState s = StateCodec.decode(golden("b"));
    assertThat(s.participants).containsExactly(Map.entry(A, 0), Map.entry(B, 0));
    assertThat(s.deadline).isEqualTo(Instant.parse("2024-01-02T03:04:35.678901Z"));
    assertThat(s.lastHeartbeats)
        .containsExactly(
            Map.entry(A, Instant.parse("2024-01-02T03:04:05.678901Z")),
            Map.entry(B, Instant.parse("2024-01-02T03:04:06.123456Z")));
    assertThat(s.dialect).isEqualTo(StateDialect.V1_13);
  }

  @Test
  void completedClosedWithWaitingNode() {
    MutableState s = StateCodec.decode(golden("c"));
    assertThat(s.round).isEqualTo(3);
    assertThat(s.complete).isTrue();
    assertThat(s.closed).isTrue();
    assertThat(s.participants).containsExactly(Map.entry(A, 0), Map.entry(B, 1));
    assertThat(s.waitList).containsExactly(C);
    assertThat(s.lastHeartbeats.get(C)).isEqualTo(Instant.parse("2024-01-02T03:05:02.500Z"));
  }

  @Test
  void protocol3FromPython37() {
    MutableState s = StateCodec.decode(golden("p3"));
    assertThat(s.participants).containsExactly(Map.entry(A, 0));
    assertThat(s.waitList).containsExactly(C);
    assertThat(s.lastHeartbeats).containsOnlyKeys(A, C);
    assertThat(s.dialect).isEqualTo(StateDialect.V1_13);
  }

  @Test
  void dialect26WithAwareTimestamps() {
    MutableState s = StateCodec.decode(golden("d"));
    assertThat(s.dialect).isEqualTo(StateDialect.V2_6);
    assertThat(s.participants).containsOnlyKeys(A, B);
    assertThat(s.redundancyList).isEmpty();
    assertThat(s.deadline).isEqualTo(Instant.parse("2024-01-02T03:04:35.678901Z"));
  }

  @Test
  void everyGoldenStateSurvivesAnEncodeDecodeRoundTrip() {
    for (String name : new String[] {"a", "b", "c", "p3", "d"}) {
      MutableState s = StateCodec.decode(golden(name));
      StateDialect dialect = s.dialect == null ? StateDialect.V1_13 : s.dialect;
      MutableState back = StateCodec.decode(StateCodec.encode(s, dialect));
      assertThat(back.snapshot()).as(name).isEqualTo(s.snapshot());
    }
  }

  @Test
  void oursAreByteForByteCPythonsApartFromTheFrameHeader() {
    // CPython 3.11 pickled these from real 1.13 states; we write the same opcodes and memo
    // entries, leaving out only FRAME (a read-ahead hint).
    for (String name : new String[] {"a", "b", "c", "d"}) {
      byte[] python = golden(name);
      MutableState s = StateCodec.decode(python);
      byte[] ours = StateCodec.encode(s, s.dialect == null ? StateDialect.V1_13 : s.dialect);
      byte[] pythonWithoutFrame = new byte[python.length - 9];
      pythonWithoutFrame[0] = python[0];
      pythonWithoutFrame[1] = python[1];
      System.arraycopy(python, 11, pythonWithoutFrame, 2, python.length - 11);
      assertThat(HexFormat.of().formatHex(ours))
          .as(name)
          .isEqualTo(HexFormat.of().formatHex(pythonWithoutFrame));
    }
  }

  @Test
  void unknownAttributesAreKept() {
    MutableState s = StateCodec.decode(golden("b"));
    s.extras.put("future_field", java.util.List.of(1L, "x"));
    MutableState back = StateCodec.decode(StateCodec.encode(s, StateDialect.V1_13));
    assertThat(back.extras).containsEntry("future_field", java.util.List.of(1L, "x"));
  }

  @Test
  void redundancyListIsWrittenInTwoXDialects() {
    MutableState s = StateCodec.decode(golden("b"));
    s.redundancyList.add(C);
    s.lastHeartbeats.put(C, Instant.parse("2024-01-02T03:04:07Z"));
    MutableState d2 = StateCodec.decode(StateCodec.encode(s, StateDialect.V2_0));
    assertThat(d2.dialect).isEqualTo(StateDialect.V2_0);
    assertThat(d2.redundancyList).containsExactly(C);
    MutableState d1 = StateCodec.decode(StateCodec.encode(s, StateDialect.V1_13));
    assertThat(d1.dialect).isEqualTo(StateDialect.V1_13);
    assertThat(d1.redundancyList).isEmpty();
  }

  @Test
  void snapshotDecodeIsPublic() {
    StateSnapshot snapshot = StateSnapshot.decode(golden("c"));
    assertThat(snapshot.waitList()).isEqualTo(Set.of(C));
  }

  @Test
  void corruptInputIsAStateErrorNotACrash() {
    byte[] b = golden("b");
    for (int cut = 0; cut < b.length; cut += 7) {
      byte[] truncated = java.util.Arrays.copyOf(b, cut);
      assertThatThrownBy(() -> StateCodec.decode(truncated))
          .isInstanceOf(RendezvousStateException.class);
    }
    assertThatThrownBy(() -> StateCodec.decode("not a pickle".getBytes(StandardCharsets.US_ASCII)))
        .isInstanceOf(RendezvousStateException.class)
        .hasMessage("The rendezvous state is corrupt. See inner exception for details.");
  }

  @Test
  void absurdlyNestedUnknownAttributesAreAStateError() {
    // (a) ends with SETITEMS BUILD STOP; add an attribute 'x' = [[[...]]] (150 levels) to the
    // state's dict before its SETITEMS. The writer itself would refuse such depth.
    byte[] base = golden("a");
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    out.write(base, 0, base.length - 3);
    out.write(0x8c);
    out.write(1);
    out.write('x');
    for (int i = 0; i < 150; i++) {
      out.write(']');
    }
    for (int i = 0; i < 149; i++) {
      out.write('a');
    }
    out.write('u');
    out.write('b');
    out.write('.');
    assertThatThrownBy(() -> StateCodec.decode(out.toByteArray()))
        .isInstanceOf(RendezvousStateException.class)
        .cause()
        .hasMessageContaining("nested too deeply");
  }

  @Test
  void unknownGlobalsAreRefused() {
    // pickle.dumps(os.system) in protocol 4: STACK_GLOBAL 'posix' 'system'
    byte[] evil = HexFormat.of().parseHex("80048c05706f736978948c0673797374656d9493942e");
    assertThatThrownBy(() -> StateCodec.decode(evil))
        .isInstanceOf(RendezvousStateException.class)
        .cause()
        .hasMessageContaining("refusing to load global posix.system");
  }
}
