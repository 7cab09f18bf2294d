package org.rdzv.launcher;

import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The text torchrun prints when workers fail (PyTorch's {@code ChildFailedError} message): a title,
 * the other failures, and the root cause, the failure with the earliest timestamp.
 */
public final class FailureSummary {
  private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd_HH:mm:ss");

  private FailureSummary() {}

  /**
   * Formats {@code failures} (by global rank) as PyTorch does; {@code host} is this machine's name
   * and {@code zone} the zone of the printed times.
   *
   * @throws IllegalArgumentException if {@code failures} is empty
   */
  public static String format(
      String entrypointName, Map<Integer, ProcessFailure> failures, String host, ZoneId zone) {
    if (failures.isEmpty()) {
      throw new IllegalArgumentException("a failure summary needs at least one failure");
    }
    String title = entrypointName + " FAILED";
    int rootRank = -1;
    ProcessFailure root = null;
    for (Map.Entry<Integer, ProcessFailure> e : failures.entrySet()) {
      if (root == null || e.getValue().timestamp().isBefore(root.timestamp())) {
        root = e.getValue();
        rootRank = e.getKey();
      }
    }
    int width = title.length();
    String rootText = "";
    List<String> others = new ArrayList<>();
    int idx = 0;
    for (Map.Entry<Integer, ProcessFailure> e : failures.entrySet()) {
      String text = failure(idx++, e.getKey(), e.getValue(), host, zone);
      for (String line : text.split("\n", -1)) {
        width = Math.max(width, line.length());
      }
      if (e.getKey() == rootRank) {
        rootText = text;
      } else {
        others.add(text);
      }
    }
    width = Math.min(width, 60);
    String border = "=".repeat(width);
    String section = "-".repeat(width);
    return String.join(
        "\n",
        border,
        title,
        section,
        "Failures:",
        others.isEmpty() ? "  <NO_OTHER_FAILURES>" : String.join("\n", others),
        section,
        "Root Cause (first observed failure):",
        rootText,
        border);
  }

  private static String failure(int idx, int rank, ProcessFailure f, String host, ZoneId zone) {
    return "["
        + idx
        + "]:\n"
        + "  time      : "
        + TIME.format(f.timestamp().atZone(zone))
        + "\n  host      : "
        + host
        + "\n  rank      : "
        + rank
        + " (local_rank: "
        + f.localRank()
        + ")\n  exitcode  : "
        + f.exitCode()
        + " (pid: "
        + f.pid()
        + ")\n  error_file: "
        + (f.errorFile() == null ? "<N/A>" : f.errorFile().toString())
        + "\n  traceback : "
        + f.message().replace("\n", "\n  ");
  }
}
