package org.rdzv.api.internal;

/**
 * The one JSON string escaper of rdzv, shared by its modules (not an API: the package is exported
 * to rdzv's own modules only).
 *
 * <p>It escapes as Python's {@code json.dumps} does with its defaults ({@code ensure_ascii}):
 * {@code "} and {@code \}, the short escapes {@code \b \f \n \r \t}, and every other character
 * outside printable ASCII as a backslash, {@code u} and four lower-case hex digits. Text that
 * PyTorch compares byte for byte (the legacy etcd state, role infos in the store) is therefore the
 * text a PyTorch node writes.
 */
public final class Json {
  private static final char[] HEX = "0123456789abcdef".toCharArray();

  private Json() {}

  /** {@code s} as a JSON string literal; {@code null} as {@code null}. */
  public static String quote(String s) {
    if (s == null) {
      return "null";
    }
    StringBuilder out = new StringBuilder(s.length() + 2);
    quote(s, out);
    return out.toString();
  }

  /** Appends {@code s} as a JSON string literal to {@code out}. */
  public static void quote(String s, StringBuilder out) {
    out.append('"');
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        case '\b' -> out.append("\\b");
        case '\f' -> out.append("\\f");
        default -> {
          if (c < 0x20 || c > 0x7e) {
            out.append("\\u")
                .append(HEX[(c >> 12) & 0xf])
                .append(HEX[(c >> 8) & 0xf])
                .append(HEX[(c >> 4) & 0xf])
                .append(HEX[c & 0xf]);
          } else {
            out.append(c);
          }
        }
      }
    }
    out.append('"');
  }
}
