package org.rdzv.launcher;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Which of a worker's streams {@code --redirects} and {@code --tee} apply to: PyTorch's {@code Std}
 * flag. Codes are PyTorch's: 0 none, 1 stdout, 2 stderr, 3 both.
 */
public enum Std {
  NONE(0),
  OUT(1),
  ERR(2),
  ALL(3);

  private static final Pattern VALUE = Pattern.compile("^[0-3]$");
  private static final Pattern MAPPING = Pattern.compile("^([0-9]+:[0-3],)*[0-9]+:[0-3]$");

  private final int code;

  Std(int code) {
    this.code = code;
  }

  /** PyTorch's numeric code. */
  public int code() {
    return code;
  }

  /** Whether this flag covers stdout. */
  public boolean out() {
    return (code & 1) != 0;
  }

  /** Whether this flag covers stderr. */
  public boolean err() {
    return (code & 2) != 0;
  }

  /** The flag for a numeric code 0-3. */
  public static Std of(int code) {
    for (Std std : values()) {
      if (std.code == code) {
        return std;
      }
    }
    throw new IllegalArgumentException("no Std flag has code " + code + " (0, 1, 2 or 3)");
  }

  /**
   * Parses PyTorch's forms for {@code nproc} workers: a code for every local rank ({@code "3"}), or
   * a mapping {@code "0:3,1:0"} where unmentioned local ranks get {@link #NONE}.
   *
   * @return the flag of each local rank {@code 0..nproc-1}
   * @throws IllegalArgumentException with PyTorch's message for any other text
   */
  public static Map<Integer, Std> parse(String text, int nproc) {
    String value = text == null ? "0" : text.strip();
    Map<Integer, Std> result = new LinkedHashMap<>();
    if (VALUE.matcher(value).matches()) {
      Std std = of(Integer.parseInt(value));
      for (int i = 0; i < nproc; i++) {
        result.put(i, std);
      }
      return result;
    }
    if (!MAPPING.matcher(value).matches()) {
      throw new IllegalArgumentException(
          value + " does not match: <" + VALUE.pattern() + "> or <" + MAPPING.pattern() + ">");
    }
    Map<Integer, Std> given = new LinkedHashMap<>();
    for (String item : value.split(",")) {
      String[] kv = item.split(":");
      given.put(Integer.parseInt(kv[0]), of(Integer.parseInt(kv[1])));
    }
    for (int i = 0; i < nproc; i++) {
      result.put(i, given.getOrDefault(i, NONE));
    }
    return result;
  }
}
