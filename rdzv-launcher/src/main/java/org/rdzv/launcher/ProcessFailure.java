package org.rdzv.launcher;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Map;

/**
 * One failed worker, as PyTorch's {@code ProcessFailure}: who it was, how it ended, and what its
 * error file ({@code TORCHELASTIC_ERROR_FILE}) says.
 *
 * @param localRank the worker's position on its agent
 * @param globalRank its {@code RANK}
 * @param pid its process id
 * @param exitCode its exit status; negative {@code -n} when it died of signal {@code n}, as PyTorch
 *     reports it. (The JVM reports a signal death as {@code 128 + n}; like a shell, statuses
 *     129-192 are read as signals.)
 * @param errorFile the error file the worker wrote, or {@code null} when it wrote none
 * @param errorFileContents that file's JSON text, or {@code null}
 * @param message the traceback from the error file ({@code py_callstack}), else its message, else
 *     PyTorch's generic text for a signal or an exit code
 * @param timestamp when the failure happened: the error file's timestamp, else when it was seen
 */
public record ProcessFailure(
    int localRank,
    int globalRank,
    long pid,
    int exitCode,
    Path errorFile,
    String errorFileContents,
    String message,
    Instant timestamp) {

  static final String NO_TRACEBACK =
      "To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html";

  /** The signal's name ({@code SIGKILL}) when the worker died of a signal, else {@code <N/A>}. */
  public String signalName() {
    return exitCode < 0 ? Signals.name(-exitCode) : "<N/A>";
  }

  /** PyTorch's exit code for a JVM exit status (signal deaths become negative). */
  static int torchExitCode(int jvmExitValue) {
    return jvmExitValue > 128 && jvmExitValue <= 128 + 64 ? -(jvmExitValue - 128) : jvmExitValue;
  }

  /**
   * Builds the failure of a worker that ended with {@code exitCode}, reading {@code errorFile} if
   * it exists. A malformed error file does not hide the failure: its text becomes the message.
   */
  static ProcessFailure of(
      int localRank, int globalRank, long pid, int exitCode, Path errorFile, Instant now) {
    String contents = null;
    String message = null;
    Instant timestamp = now;
    if (errorFile != null && Files.isRegularFile(errorFile)) {
      try {
        contents = Files.readString(errorFile, StandardCharsets.UTF_8);
      } catch (IOException e) {
        contents = null;
      }
    }
    if (contents != null) {
      try {
        Object data = Json.parse(contents);
        if (data instanceof Map<?, ?> map) {
          Object m = map.get("message");
          if (m instanceof String s) {
            message = s;
            timestamp = seconds(map.get("timestamp"), now);
          } else if (m instanceof Map<?, ?> inner) {
            Object extra = inner.get("extraInfo");
            Object callstack = extra instanceof Map<?, ?> e ? e.get("py_callstack") : null;
            Object text = inner.get("message");
            message = callstack instanceof String c ? c : text instanceof String t ? t : "<N/A>";
            timestamp = seconds(extra instanceof Map<?, ?> e ? e.get("timestamp") : null, now);
          }
        }
      } catch (IllegalArgumentException e) {
        message = "malformed error file: " + contents.strip();
      }
    } else {
      errorFile = null;
    }
    if (message == null || message.isEmpty()) {
      message =
          exitCode < 0
              ? "Signal " + -exitCode + " (" + Signals.name(-exitCode) + ") received by PID " + pid
              : NO_TRACEBACK;
    }
    return new ProcessFailure(
        localRank, globalRank, pid, exitCode, errorFile, contents, message, timestamp);
  }

  private static Instant seconds(Object value, Instant fallback) {
    try {
      if (value instanceof Number n) {
        return Instant.ofEpochSecond(n.longValue());
      }
      if (value instanceof String s) {
        return Instant.ofEpochSecond(Long.parseLong(s.strip()));
      }
    } catch (NumberFormatException e) {
      // fall through: a bad timestamp should not hide the failure
    }
    return fallback;
  }

  /** POSIX signal names on Linux. */
  static final class Signals {
    private static final String[] NAMES = {
      null,
      "SIGHUP",
      "SIGINT",
      "SIGQUIT",
      "SIGILL",
      "SIGTRAP",
      "SIGABRT",
      "SIGBUS",
      "SIGFPE",
      "SIGKILL",
      "SIGUSR1",
      "SIGSEGV",
      "SIGUSR2",
      "SIGPIPE",
      "SIGALRM",
      "SIGTERM",
      "SIGSTKFLT",
      "SIGCHLD",
      "SIGCONT",
      "SIGSTOP",
      "SIGTSTP",
      "SIGTTIN",
      "SIGTTOU",
      "SIGURG",
      "SIGXCPU",
      "SIGXFSZ",
      "SIGVTALRM",
      "SIGPROF",
      "SIGWINCH",
      "SIGIO",
      "SIGPWR",
      "SIGSYS"
    };

    private Signals() {}

    static String name(int signal) {
      return signal > 0 && signal < NAMES.length ? NAMES[signal] : "SIG" + signal;
    }
  }
}
