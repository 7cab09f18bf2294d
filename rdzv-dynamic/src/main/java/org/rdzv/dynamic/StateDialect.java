package org.rdzv.dynamic;

import java.util.Locale;

/**
 * The three incompatible encodings of PyTorch's rendezvous state. A rendezvous holds nodes of one
 * dialect only. A node writes the dialect of the state it finds; without a state, the one its
 * configuration names ({@code state_dialect}, {@code store_protocol}), else the one a PyTorch store
 * server's protocol family implies, else {@link #V2_6}. A node whose configuration names a dialect
 * refuses a state of another one.
 */
public enum StateDialect {
  /** torch ≤ 1.13: node field {@code fqdn}, naive UTC timestamps, no redundancy list. */
  V1_13("1.13", "fqdn", false, false),
  /** torch ≈ 2.0–2.5: node field {@code addr}, naive UTC timestamps, a redundancy list. */
  V2_0("2.0-2.5", "addr", false, true),
  /** torch ≈ 2.6 and newer: as 2.0–2.5 with timezone-aware UTC timestamps. */
  V2_6("2.6+", "addr", true, true);

  private final String label;
  private final String nodeField;
  private final boolean awareTimestamps;
  private final boolean redundancyList;

  StateDialect(String label, String nodeField, boolean awareTimestamps, boolean redundancyList) {
    this.label = label;
    this.nodeField = nodeField;
    this.awareTimestamps = awareTimestamps;
    this.redundancyList = redundancyList;
  }

  /** The configuration spelling: {@code 1.13}, {@code 2.0-2.5} or {@code 2.6+}. */
  public String label() {
    return label;
  }

  /**
   * The label with the PyTorch versions that write this dialect, for messages: {@code 1.13 (PyTorch
   * 1.13)}.
   */
  public String describe() {
    return switch (this) {
      case V1_13 -> "1.13 (PyTorch 1.13)";
      case V2_0 -> "2.0-2.5 (PyTorch 2.0 to 2.5)";
      case V2_6 -> "2.6+ (PyTorch 2.6 and newer)";
    };
  }

  /** The attribute that holds a node's host: {@code fqdn} or {@code addr}. */
  public String nodeField() {
    return nodeField;
  }

  /** Whether timestamps carry {@code timezone.utc}. */
  public boolean awareTimestamps() {
    return awareTimestamps;
  }

  /** Whether the state has a {@code redundancy_list} and nodes follow PyTorch 2.x's join rules. */
  public boolean redundancyList() {
    return redundancyList;
  }

  /**
   * Parses a configuration value: a label, or a PyTorch version ({@code 1.13}, {@code 2.3}, {@code
   * 2.7}, ...) which maps to the dialect that version writes.
   *
   * @throws IllegalArgumentException for anything else
   */
  public static StateDialect parse(String text) {
    String t = text.strip().toLowerCase(Locale.ROOT);
    for (StateDialect d : values()) {
      if (d.label.equals(t)) {
        return d;
      }
    }
    if (t.equals("2") || t.equals("2.x") || t.equals("2+")) {
      return V2_6;
    }
    if (t.matches("1(\\.\\d+)*")) {
      return V1_13;
    }
    if (t.matches("2\\.\\d+(\\.\\d+)*")) {
      int minor = Integer.parseInt(t.split("\\.")[1]);
      return minor >= 6 ? V2_6 : V2_0;
    }
    throw new IllegalArgumentException(
        "The state dialect '" + text + "' is not one of 1.13, 2.0-2.5, 2.6+ (or a torch version).");
  }
}
