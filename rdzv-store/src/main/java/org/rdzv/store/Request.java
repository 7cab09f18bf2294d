package org.rdzv.store;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;

/**
 * One decoded request. Keys are the raw key bytes held as ISO-8859-1 strings (one char per byte, so
 * any byte sequence round-trips and the JDK stores it compactly); values are raw bytes.
 *
 * <p>Field use per command: SET/APPEND/QUEUE_PUSH {@code keys[0], values[0]}; COMPARE_SET {@code
 * keys[0], values[0]=expected, values[1]=desired}; ADD {@code keys[0], number=delta};
 * CHECK/WAIT/MULTI_GET {@code keys}; MULTI_SET {@code keys, values}; GET/DELETE_KEY/WATCH_KEY/
 * QUEUE_POP/QUEUE_LEN {@code keys[0]}; PING {@code number=nonce}.
 */
record Request(Command command, String[] keys, byte[][] values, long number) {
  static final String[] NO_KEYS = new String[0];
  static final byte[][] NO_VALUES = new byte[0][];

  static Request of(Command command) {
    return new Request(command, NO_KEYS, NO_VALUES, 0);
  }

  String key() {
    return keys[0];
  }

  byte[] value() {
    return values[0];
  }

  /** A raw key from its bytes. */
  static String key(byte[] bytes) {
    return new String(bytes, StandardCharsets.ISO_8859_1);
  }

  /** The bytes of a raw key. */
  static byte[] keyBytes(String key) {
    return key.getBytes(StandardCharsets.ISO_8859_1);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Request r
        && command == r.command
        && number == r.number
        && Arrays.equals(keys, r.keys)
        && Arrays.deepEquals(values, r.values);
  }

  @Override
  public int hashCode() {
    return command.hashCode() * 31 + Arrays.hashCode(keys);
  }

  @Override
  public String toString() {
    StringBuilder s = new StringBuilder(command.name());
    s.append(' ').append(List.of(keys));
    for (byte[] v : values) {
      s.append(' ').append(v.length).append("B");
    }
    if (number != 0) {
      s.append(' ').append(number);
    }
    return s.toString();
  }
}
