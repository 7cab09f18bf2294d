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

  /**
   * {@code value} as Python's {@code json.dumps} writes it with its defaults: {@code ", "} and
   * {@code ": "} separators, strings escaped as {@link #quote(String)}, floats as Python's {@code
   * repr}. Takes {@code null}, {@link String}, {@link Boolean}, {@link Number}, {@link
   * java.util.Map} (keys as text, in iteration order), {@link java.util.List} and {@link Enum} (its
   * name); anything else is written as its {@code toString()} quoted.
   */
  public static String write(Object value) {
    StringBuilder out = new StringBuilder();
    write(value, out);
    return out.toString();
  }

  /** Appends {@code value} to {@code out} as {@link #write(Object)} does. */
  public static void write(Object value, StringBuilder out) {
    switch (value) {
      case null -> out.append("null");
      case String s -> quote(s, out);
      case Boolean b -> out.append(b ? "true" : "false");
      case Double d -> out.append(pythonFloat(d));
      case Float f -> out.append(pythonFloat(f.doubleValue()));
      case Number n -> out.append(n);
      case Enum<?> e -> quote(e.name(), out);
      case java.util.Map<?, ?> map -> {
        out.append('{');
        boolean first = true;
        for (java.util.Map.Entry<?, ?> e : map.entrySet()) {
          if (!first) {
            out.append(", ");
          }
          first = false;
          quote(String.valueOf(e.getKey()), out);
          out.append(": ");
          write(e.getValue(), out);
        }
        out.append('}');
      }
      case java.util.List<?> list -> {
        out.append('[');
        for (int i = 0; i < list.size(); i++) {
          if (i > 0) {
            out.append(", ");
          }
          write(list.get(i), out);
        }
        out.append(']');
      }
      default -> quote(value.toString(), out);
    }
  }

  /**
   * Python's {@code repr} of a float, which {@code json.dumps} writes: the shortest digits that
   * read back to the same double, positional from 1e-4 up to 1e16 ({@code 3.0}, {@code 0.0001}),
   * else scientific with a signed two-digit exponent ({@code 1e-05}, {@code 1.5e+16}); {@code NaN},
   * {@code Infinity} and {@code -Infinity} as {@code json.dumps} allows them.
   */
  public static String pythonFloat(double d) {
    if (Double.isNaN(d)) {
      return "NaN";
    }
    if (Double.isInfinite(d)) {
      return d > 0 ? "Infinity" : "-Infinity";
    }
    if (d == 0) {
      return (1 / d < 0) ? "-0.0" : "0.0";
    }
    // Double.toString gives the shortest round-tripping digits (JDK 19+); only the layout differs.
    java.math.BigDecimal exact = new java.math.BigDecimal(Double.toString(d)).stripTrailingZeros();
    int exponent = exact.precision() - exact.scale() - 1;
    if (exponent >= -4 && exponent < 16) {
      String plain = exact.toPlainString();
      return plain.indexOf('.') >= 0 ? plain : plain + ".0";
    }
    String digits = exact.unscaledValue().abs().toString();
    StringBuilder out = new StringBuilder();
    if (exact.signum() < 0) {
      out.append('-');
    }
    out.append(digits.charAt(0));
    if (digits.length() > 1) {
      out.append('.').append(digits, 1, digits.length());
    }
    out.append('e').append(exponent < 0 ? '-' : '+');
    int abs = Math.abs(exponent);
    if (abs < 10) {
      out.append('0');
    }
    return out.append(abs).toString();
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
