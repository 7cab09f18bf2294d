package org.rdzv.store;

/**
 * C++ {@code std::stoll(s, nullptr, 10)} as PyTorch's ADD applies it to the stored value: leading
 * whitespace, an optional sign, then the longest run of decimal digits; trailing bytes are ignored.
 * No digits, or a value outside the range of a long, is an error.
 */
final class Stoll {
  private Stoll() {}

  static long parse(byte[] s) throws ProtocolException {
    int i = 0;
    int n = s.length;
    while (i < n && isSpace(s[i])) {
      i++;
    }
    boolean negative = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) {
      negative = s[i] == '-';
      i++;
    }
    int digitsStart = i;
    long value = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
      int d = s[i] - '0';
      // Accumulate negatively so that Long.MIN_VALUE parses.
      if (value < (Long.MIN_VALUE + d) / 10) {
        throw new ProtocolException(
            ProtocolException.Reason.NOT_A_NUMBER, "ADD on a value out of the range of int64");
      }
      value = value * 10 - d;
      i++;
    }
    if (i == digitsStart) {
      throw new ProtocolException(
          ProtocolException.Reason.NOT_A_NUMBER, "ADD on a value that is not a number");
    }
    if (!negative) {
      if (value == Long.MIN_VALUE) {
        throw new ProtocolException(
            ProtocolException.Reason.NOT_A_NUMBER, "ADD on a value out of the range of int64");
      }
      value = -value;
    }
    return value;
  }

  private static boolean isSpace(byte b) {
    return b == ' ' || (b >= '\t' && b <= '\r');
  }
}
