package org.rdzv.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The decoder hands multi-key requests over key by key and can be told "not now". */
class DecoderStreamingTest {
  /** Records what it is given; refuses the element or reservation it is told to, once. */
  private static final class Recorder implements RequestDecoder.StreamingSink {
    final List<String> events = new ArrayList<>();
    int refuseElement = -1;
    boolean refuseReserve;

    @Override
    public boolean offer(Request request) {
      events.add("request " + request);
      return true;
    }

    @Override
    public void begin(Command command, int count) {
      events.add("begin " + command + " " + count);
    }

    @Override
    public boolean element(String key, byte[] value) {
      if (refuseElement == 0) {
        refuseElement = -1;
        return false;
      }
      refuseElement--;
      events.add("key " + key + (value == null ? "" : " " + value.length));
      return true;
    }

    @Override
    public void end() {
      events.add("end");
    }

    @Override
    public boolean stopped() {
      return false;
    }

    @Override
    public boolean reserve(long bytes) {
      if (refuseReserve) {
        refuseReserve = false;
        return false;
      }
      events.add("reserve " + bytes);
      return true;
    }
  }

  private static byte[] waitFrame(int keys) {
    ByteBuffer b = ByteBuffer.allocate(5 + 9 + keys * 16).order(ByteOrder.LITTLE_ENDIAN);
    b.put(Hex.bytes("00 cef7853c")).put((byte) 0x06).putLong(keys);
    for (int i = 0; i < keys; i++) {
      byte[] k = String.format("/k%05d", i).getBytes();
      b.putLong(k.length).put(k);
    }
    return java.util.Arrays.copyOf(b.array(), b.position());
  }

  @Test
  void aWaitFedByteByByteIsHandedOverKeyByKeyOnce() throws Exception {
    byte[] frame = waitFrame(1000);
    RequestDecoder decoder = new RequestDecoder(Limits.LIBUV);
    Recorder sink = new Recorder();
    for (byte b : frame) {
      ByteBuffer one = ByteBuffer.wrap(new byte[] {b});
      decoder.feed(one, sink);
      assertThat(one.hasRemaining()).isFalse();
    }
    assertThat(sink.events).hasSize(1002);
    assertThat(sink.events.get(0)).isEqualTo("begin WAIT 1000");
    assertThat(sink.events.get(1)).isEqualTo("key /k00000");
    assertThat(sink.events.get(1000)).isEqualTo("key /k00999");
    assertThat(sink.events.get(1001)).isEqualTo("end");
    assertThat(decoder.pendingBytes()).isZero();
    assertThat(decoder.heldBytes()).isZero();
  }

  @Test
  void aRefusedKeyIsKeptAndOfferedFirstNextTime() throws Exception {
    byte[] frame = waitFrame(3);
    RequestDecoder decoder = new RequestDecoder(Limits.LIBUV);
    Recorder sink = new Recorder();
    sink.refuseElement = 1;
    ByteBuffer all = ByteBuffer.wrap(frame);
    decoder.feed(all, sink);
    assertThat(sink.events).containsExactly("begin WAIT 3", "key /k00000");
    assertThat(decoder.hasRetained()).isTrue();
    assertThat(all.remaining()).isEqualTo(15); // the third key, not consumed
    decoder.feed(all, sink);
    assertThat(sink.events)
        .containsExactly("begin WAIT 3", "key /k00000", "key /k00001", "key /k00002", "end");
  }

  @Test
  void aValueInPiecesIsReservedWholeBeforeItsBytesAreRead() throws Exception {
    ByteBuffer b = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
    b.put(Hex.bytes("00 cef7853c")).put((byte) 0x01).putLong(2).put("/v".getBytes()).putLong(1000);
    b.put(new byte[10]).flip();
    RequestDecoder decoder = new RequestDecoder(Limits.LIBUV);
    Recorder sink = new Recorder();
    sink.refuseReserve = true;
    decoder.feed(b, sink);
    assertThat(b.remaining()).isEqualTo(10); // stopped before the value's bytes
    assertThat(decoder.heldBytes()).isZero();
    decoder.feed(b, sink);
    assertThat(sink.events).containsExactly("reserve 1000");
    assertThat(decoder.heldBytes()).isEqualTo(1000);
    decoder.feed(ByteBuffer.wrap(new byte[990]), sink);
    assertThat(sink.events).hasSize(2);
    assertThat(sink.events.get(1)).startsWith("request SET [/v] 1000B");
    assertThat(decoder.heldBytes()).isZero();
  }
}
