package org.rdzv.store;

import java.io.ByteArrayOutputStream;
import java.util.HexFormat;

/** Hex strings with spaces and {@code |} separators, as in the protocol reference's tables. */
final class Hex {
  private Hex() {}

  static byte[] bytes(String... parts) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (String part : parts) {
      String clean = part.replaceAll("[\\s|]", "");
      out.writeBytes(HexFormat.of().parseHex(clean));
    }
    return out.toByteArray();
  }

  static String of(byte[] bytes) {
    return HexFormat.of().formatHex(bytes);
  }
}
