package org.rdzv.dynamic;

import java.util.Comparator;
import java.util.Objects;
import java.util.Optional;

/**
 * One node of a dynamic rendezvous: PyTorch's {@code _NodeDesc}. Equal descriptors are the same
 * node, so they must be unique across the rendezvous: {@code host} is this machine's FQDN (or
 * {@code local_addr}), {@code pid} the process id and {@code localId} a per-process counter.
 *
 * <p>The natural order of this record is PyTorch's: by host (code point by code point), then pid,
 * then local id, so {@code node10} sorts before {@code node9}. {@link #NATURAL_ORDER} compares
 * digit runs in host names by value instead ({@code node9} before {@code node10}).
 *
 * @param host the node's host name or address
 * @param pid the process id of the node's handler
 * @param localId a process-wide unique counter
 */
public record NodeDescriptor(String host, long pid, long localId)
    implements Comparable<NodeDescriptor> {

  /** Ranks by host name with numbers compared by value, then pid, then local id. */
  public static final Comparator<NodeDescriptor> NATURAL_ORDER =
      Comparator.comparing(NodeDescriptor::host, NodeDescriptor::compareNatural)
          .thenComparing(NodeDescriptor::host, NodeDescriptor::compareCodePoints)
          .thenComparingLong(NodeDescriptor::pid)
          .thenComparingLong(NodeDescriptor::localId);

  /** PyTorch's order: the dataclass tuple {@code (host, pid, local_id)}. */
  public static final Comparator<NodeDescriptor> PYTORCH_ORDER =
      Comparator.comparing(NodeDescriptor::host, NodeDescriptor::compareCodePoints)
          .thenComparingLong(NodeDescriptor::pid)
          .thenComparingLong(NodeDescriptor::localId);

  public NodeDescriptor {
    Objects.requireNonNull(host, "host");
  }

  // Written out (rather than the record's generated methods) because large states hash and
  // compare thousands of descriptors per decode.
  @Override
  public boolean equals(Object o) {
    return o == this
        || (o instanceof NodeDescriptor n
            && n.pid == pid
            && n.localId == localId
            && n.host.equals(host));
  }

  @Override
  public int hashCode() {
    return (host.hashCode() * 31 + Long.hashCode(pid)) * 31 + Long.hashCode(localId);
  }

  @Override
  public int compareTo(NodeDescriptor other) {
    return PYTORCH_ORDER.compare(this, other);
  }

  /** {@code host_pid_localId}, as PyTorch's {@code repr}. */
  @Override
  public String toString() {
    return host + "_" + pid + "_" + localId;
  }

  /**
   * Parses {@link #toString()}'s form back, {@code host_pid_localId}: the last two {@code
   * _}-separated fields are the numbers, so the host may contain underscores. Empty for text not of
   * that form (an empty host, a field that is not a decimal {@code long}).
   */
  public static Optional<NodeDescriptor> parse(String text) {
    int l = text.lastIndexOf('_');
    int p = l > 0 ? text.lastIndexOf('_', l - 1) : -1;
    if (p <= 0) {
      return Optional.empty();
    }
    try {
      return Optional.of(
          new NodeDescriptor(
              text.substring(0, p),
              Long.parseLong(text.substring(p + 1, l)),
              Long.parseLong(text.substring(l + 1))));
    } catch (NumberFormatException e) {
      return Optional.empty();
    }
  }

  /** Python's string order: by Unicode code point (Java's {@code compareTo} uses UTF-16 units). */
  static int compareCodePoints(String a, String b) {
    int i = 0;
    int j = 0;
    while (i < a.length() && j < b.length()) {
      int ca = a.codePointAt(i);
      int cb = b.codePointAt(j);
      if (ca != cb) {
        return Integer.compare(ca, cb);
      }
      i += Character.charCount(ca);
      j += Character.charCount(cb);
    }
    return Integer.compare(a.length() - i, b.length() - j);
  }

  /** Compares runs of ASCII digits by numeric value and everything else by code point. */
  static int compareNatural(String a, String b) {
    int i = 0;
    int j = 0;
    while (i < a.length() && j < b.length()) {
      char ca = a.charAt(i);
      char cb = b.charAt(j);
      if (isDigit(ca) && isDigit(cb)) {
        int si = i;
        int sj = j;
        while (i < a.length() && isDigit(a.charAt(i))) {
          i++;
        }
        while (j < b.length() && isDigit(b.charAt(j))) {
          j++;
        }
        String da = strip(a.substring(si, i));
        String db = strip(b.substring(sj, j));
        int c =
            da.length() != db.length()
                ? Integer.compare(da.length(), db.length())
                : da.compareTo(db);
        if (c != 0) {
          return c;
        }
        continue;
      }
      int pa = a.codePointAt(i);
      int pb = b.codePointAt(j);
      if (pa != pb) {
        return Integer.compare(pa, pb);
      }
      i += Character.charCount(pa);
      j += Character.charCount(pb);
    }
    return Integer.compare(a.length() - i, b.length() - j);
  }

  private static boolean isDigit(char c) {
    return c >= '0' && c <= '9';
  }

  private static String strip(String digits) {
    int k = 0;
    while (k < digits.length() - 1 && digits.charAt(k) == '0') {
      k++;
    }
    return digits.substring(k);
  }
}
