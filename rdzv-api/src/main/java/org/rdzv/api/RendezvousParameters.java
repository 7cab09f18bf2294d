package org.rdzv.api;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * What a handler is built from: PyTorch's {@code RendezvousParameters}, validated as PyTorch
 * validates it, with its typed getters' exact rules.
 *
 * <p>Config values are {@code String}s when they come from a command line ({@code --rdzv-conf
 * k=v,...}); programs may also put {@link Boolean}, {@link Integer}, {@link Long} or {@link Double}
 * values, which the getters treat as Python treats {@code bool}, {@code int} and {@code float}.
 *
 * @param backend registry name of the backend; must not be empty
 * @param endpoint backend-specific address, usually {@code host[:port]}; may be empty
 * @param runId the id shared by the nodes of one rendezvous (not checked here, as in PyTorch)
 * @param minNodes at least 1
 * @param maxNodes at least {@code minNodes}
 * @param localAddr this node's address as others should see it, or {@code null} (PyTorch 2.x)
 * @param config backend options, immutable
 */
public record RendezvousParameters(
    String backend,
    String endpoint,
    String runId,
    int minNodes,
    int maxNodes,
    String localAddr,
    Map<String, Object> config) {

  public RendezvousParameters {
    if (backend == null || backend.isEmpty()) {
      throw new IllegalArgumentException("The rendezvous backend name must be a non-empty string.");
    }
    if (minNodes < 1) {
      throw new IllegalArgumentException(
          "The minimum number of rendezvous nodes (" + minNodes + ") must be greater than zero.");
    }
    if (maxNodes < minNodes) {
      throw new IllegalArgumentException(
          "The maximum number of rendezvous nodes ("
              + maxNodes
              + ") must be greater than or equal to the minimum number of rendezvous nodes ("
              + minNodes
              + ").");
    }
    endpoint = endpoint == null ? "" : endpoint;
    runId = runId == null ? "" : runId;
    Map<String, Object> copy = new LinkedHashMap<>();
    if (config != null) {
      config.forEach((k, v) -> copy.put(Objects.requireNonNull(k, "config key"), v));
    }
    config = Collections.unmodifiableMap(copy);
  }

  public RendezvousParameters(
      String backend, String endpoint, String runId, int minNodes, int maxNodes) {
    this(backend, endpoint, runId, minNodes, maxNodes, null, Map.of());
  }

  public RendezvousParameters(
      String backend,
      String endpoint,
      String runId,
      int minNodes,
      int maxNodes,
      Map<String, ?> config) {
    this(backend, endpoint, runId, minNodes, maxNodes, null, Map.copyOf(config));
  }

  /** A copy with one more config entry (replacing any value under {@code key}). */
  public RendezvousParameters with(String key, Object value) {
    Map<String, Object> copy = new LinkedHashMap<>(config);
    copy.put(key, value);
    return new RendezvousParameters(backend, endpoint, runId, minNodes, maxNodes, localAddr, copy);
  }

  /** The raw value under {@code key}, or {@code defaultValue}. */
  public Object get(String key, Object defaultValue) {
    return config.containsKey(key) ? config.get(key) : defaultValue;
  }

  /** The raw value under {@code key} as text, if present and not null. */
  public Optional<String> getString(String key) {
    Object value = config.get(key);
    return value == null ? Optional.empty() : Optional.of(value.toString());
  }

  /**
   * PyTorch's {@code get_as_bool}: {@code null} and booleans as they are; integers 1 and 0; text
   * (lower-cased, not trimmed) {@code 1 true t yes y} or {@code 0 false f no n}. Anything else is
   * an error naming the option.
   */
  public Boolean getAsBool(String key, Boolean defaultValue) {
    Object value = get(key, defaultValue);
    if (value == null || value instanceof Boolean) {
      return (Boolean) value;
    }
    if (value instanceof Integer || value instanceof Long) {
      long n = ((Number) value).longValue();
      if (n == 1) {
        return true;
      }
      if (n == 0) {
        return false;
      }
    } else if (value instanceof String s) {
      switch (s.toLowerCase(Locale.ROOT)) {
        case "1", "true", "t", "yes", "y" -> {
          return true;
        }
        case "0", "false", "f", "no", "n" -> {
          return false;
        }
        default -> {}
      }
    }
    throw new IllegalArgumentException(
        "The rendezvous configuration option '"
            + key
            + "' does not represent a valid boolean value.");
  }

  public Boolean getAsBool(String key) {
    return getAsBool(key, null);
  }

  /**
   * PyTorch's {@code get_as_int}, which applies Python's {@code int()}: text may carry surrounding
   * whitespace, a sign and single underscores between digits ({@code " 12 "}, {@code "+5"}, {@code
   * "1_000"}); booleans count as 1 and 0; a floating-point value is truncated. {@code "1.5"} and
   * {@code "0x10"} are errors naming the option. Values beyond the range of {@code int} are refused
   * too (Python would accept them).
   */
  public Integer getAsInt(String key, Integer defaultValue) {
    Object value = get(key, defaultValue);
    if (value == null) {
      return null;
    }
    Long parsed =
        switch (value) {
          case Boolean b -> b ? 1L : 0L;
          case Integer i -> (long) i;
          case Long l -> l;
          case Double d -> Double.isFinite(d) ? (long) d.doubleValue() : null;
          case Float f -> Float.isFinite(f) ? (long) f.floatValue() : null;
          case String s -> PythonInt.parse(s);
          default ->
              throw new IllegalArgumentException(
                  "The rendezvous configuration option '"
                      + key
                      + "' has a value of type "
                      + value.getClass().getSimpleName()
                      + ", which cannot be read as an integer.");
        };
    if (parsed == null || parsed < Integer.MIN_VALUE || parsed > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          "The rendezvous configuration option '"
              + key
              + "' does not represent a valid integer value.");
    }
    return parsed.intValue();
  }

  public Integer getAsInt(String key) {
    return getAsInt(key, null);
  }

  /** Python's {@code int(str)} for base 10, or {@code null} where Python raises ValueError. */
  static final class PythonInt {
    private PythonInt() {}

    static Long parse(String text) {
      String s = text.strip();
      int i = 0;
      boolean negative = false;
      if (!s.isEmpty() && (s.charAt(0) == '+' || s.charAt(0) == '-')) {
        negative = s.charAt(0) == '-';
        i = 1;
      }
      if (i >= s.length()) {
        return null;
      }
      long result = 0;
      boolean lastWasDigit = false;
      for (; i < s.length(); i++) {
        char c = s.charAt(i);
        if (c == '_') {
          if (!lastWasDigit) {
            return null;
          }
          lastWasDigit = false;
          continue;
        }
        int digit = Character.digit(c, 10);
        if (digit < 0) {
          return null;
        }
        if (result > (Long.MAX_VALUE - digit) / 10) {
          return null;
        }
        result = result * 10 + digit;
        lastWasDigit = true;
      }
      if (!lastWasDigit) {
        return null;
      }
      return negative ? -result : result;
    }
  }
}
