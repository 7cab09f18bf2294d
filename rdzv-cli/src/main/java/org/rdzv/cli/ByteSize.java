package org.rdzv.cli;

import java.util.Locale;
import picocli.CommandLine.ITypeConverter;

/**
 * A byte count as a user writes it: {@code 1048576}, {@code 512k}, {@code 64m}, {@code 2g}, {@code
 * 1GiB}.
 */
final class ByteSize implements ITypeConverter<Long> {
  @Override
  public Long convert(String value) {
    return parse(value);
  }

  static long parse(String value) {
    String v = value.strip().toLowerCase(Locale.ROOT).replace("ib", "").replace("b", "");
    long unit = 1;
    if (!v.isEmpty()) {
      switch (v.charAt(v.length() - 1)) {
        case 'k' -> unit = 1L << 10;
        case 'm' -> unit = 1L << 20;
        case 'g' -> unit = 1L << 30;
        case 't' -> unit = 1L << 40;
        default -> {}
      }
    }
    String digits = unit == 1 ? v : v.substring(0, v.length() - 1);
    try {
      long n = Long.parseLong(digits.strip());
      if (n < 0 || n > Long.MAX_VALUE / unit) {
        throw new NumberFormatException();
      }
      return n * unit;
    } catch (NumberFormatException e) {
      throw new IllegalArgumentException(
          "'" + value + "' is not a byte count (examples: 1048576, 512k, 64m, 2g)");
    }
  }
}
