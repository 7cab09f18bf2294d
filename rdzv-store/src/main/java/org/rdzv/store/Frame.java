package org.rdzv.store;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/** A request being encoded by the client: little-endian fields in one growable array. */
final class Frame {
  private byte[] buf = new byte[256];
  private int len;

  Frame reset() {
    len = 0;
    return this;
  }

  byte[] array() {
    return buf;
  }

  int length() {
    return len;
  }

  private void room(int n) {
    if (len + n > buf.length) {
      buf = Arrays.copyOf(buf, Math.max(buf.length * 2, len + n));
    }
  }

  Frame u8(int b) {
    room(1);
    buf[len++] = (byte) b;
    return this;
  }

  Frame u32(int v) {
    room(4);
    for (int i = 0; i < 4; i++) {
      buf[len++] = (byte) (v >>> (8 * i));
    }
    return this;
  }

  Frame i64(long v) {
    room(8);
    for (int i = 0; i < 8; i++) {
      buf[len++] = (byte) (v >>> (8 * i));
    }
    return this;
  }

  /** A u64 length and the bytes. */
  Frame bytes(byte[] value) {
    i64(value.length);
    room(value.length);
    System.arraycopy(value, 0, buf, len, value.length);
    len += value.length;
    return this;
  }

  /** A user key as the stock client sends it: {@code "/" + key} in UTF-8. */
  Frame userKey(String key) {
    return bytes(wireKey(key));
  }

  /** The wire bytes of a user key. */
  static byte[] wireKey(String key) {
    byte[] utf8 = key.getBytes(StandardCharsets.UTF_8);
    byte[] wire = new byte[utf8.length + 1];
    wire[0] = '/';
    System.arraycopy(utf8, 0, wire, 1, utf8.length);
    return wire;
  }

  /** The user key of wire bytes, or {@code null} when they lack the {@code /} prefix. */
  static String userKey(byte[] wire) {
    if (wire.length == 0 || wire[0] != '/') {
      return null;
    }
    return new String(wire, 1, wire.length - 1, StandardCharsets.UTF_8);
  }
}
