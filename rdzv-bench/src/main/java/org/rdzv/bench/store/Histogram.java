package org.rdzv.bench.store;

/**
 * Latencies in log-linear microsecond buckets (1 µs to 1 ms, 10 µs to 10 ms, 100 µs to 1 s), small
 * enough to pass between processes as text.
 */
final class Histogram {
  private static final int BUCKETS = 1900 + 9900 + 1;
  private final long[] counts = new long[BUCKETS];
  private long total;

  void record(long nanos) {
    counts[bucket(nanos / 1000)]++;
    total++;
  }

  private static int bucket(long micros) {
    if (micros < 1000) {
      return (int) micros;
    }
    if (micros < 10_000) {
      return 1000 + (int) ((micros - 1000) / 10);
    }
    if (micros < 1_000_000) {
      return 1900 + (int) ((micros - 10_000) / 100);
    }
    return BUCKETS - 1;
  }

  private static double micros(int bucket) {
    if (bucket < 1000) {
      return bucket + 0.5;
    }
    if (bucket < 1900) {
      return 1000 + (bucket - 1000) * 10 + 5;
    }
    return 10_000 + (bucket - 1900) * 100.0 + 50;
  }

  long count() {
    return total;
  }

  void add(Histogram other) {
    for (int i = 0; i < BUCKETS; i++) {
      counts[i] += other.counts[i];
    }
    total += other.total;
  }

  /** The latency at quantile {@code q} (0..1), in microseconds. */
  double percentile(double q) {
    if (total == 0) {
      return Double.NaN;
    }
    long rank = (long) Math.ceil(q * total);
    long seen = 0;
    for (int i = 0; i < BUCKETS; i++) {
      seen += counts[i];
      if (seen >= Math.max(1, rank)) {
        return micros(i);
      }
    }
    return micros(BUCKETS - 1);
  }

  /** Non-empty buckets as {@code index:count} pairs separated by commas. */
  String encode() {
    StringBuilder s = new StringBuilder();
    for (int i = 0; i < BUCKETS; i++) {
      if (counts[i] != 0) {
        if (s.length() > 0) {
          s.append(',');
        }
        s.append(i).append(':').append(counts[i]);
      }
    }
    return s.length() == 0 ? "-" : s.toString();
  }

  static Histogram decode(String text) {
    Histogram h = new Histogram();
    if (text.equals("-")) {
      return h;
    }
    for (String pair : text.split(",")) {
      int colon = pair.indexOf(':');
      int i = Integer.parseInt(pair.substring(0, colon));
      long n = Long.parseLong(pair.substring(colon + 1));
      h.counts[i] += n;
      h.total += n;
    }
    return h;
  }
}
