package org.rdzv.cli;

import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;
import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.api.internal.Json;

/**
 * How {@code bin/rdzv} configures logging (docs/logging.md). rdzv's code logs through the JDK's
 * {@link System.Logger}, which goes to {@code java.util.logging}; this class sets the level of
 * rdzv's loggers ({@code org.rdzv.*}) from torchrun's {@code LOGLEVEL} and the format of the
 * console handler from {@code --log-format}: {@code text} ({@code LEVEL:logger:message}, Python's
 * default layout, which torchrun 1.13 prints) or {@code json} (one object a line). A JUL
 * configuration file ({@code -Djava.util.logging.config.file}) is left alone except for the level.
 */
final class Logging {
  /** {@code --log-format}. */
  enum Format {
    TEXT,
    JSON
  }

  /** Held strongly: java.util.logging keeps loggers only weakly. */
  private static final Logger RDZV = Logger.getLogger("org.rdzv");

  private static final ReentrantLock CONTEXT_LOCK = new ReentrantLock();
  private static final Map<String, Object> CONTEXT = new LinkedHashMap<>();

  private Logging() {}

  /**
   * Applies {@code LOGLEVEL} (from {@code env}) and {@code format}. Called once per command, before
   * it runs.
   *
   * @throws IllegalArgumentException if {@code LOGLEVEL} is not a level name
   */
  static void configure(Format format, Map<String, String> env) {
    Level level = level(env.get("LOGLEVEL"));
    boolean ownConfig = System.getProperty("java.util.logging.config.file") != null;
    if (!ownConfig) {
      // Other libraries' INFO lines (gRPC, netty, jetcd) are noise next to rdzv's, which are the
      // job's progress: they log from WARNING up, rdzv from INFO (or LOGLEVEL).
      Logger.getLogger("").setLevel(Level.WARNING);
      RDZV.setLevel(Level.INFO);
    }
    for (Handler h : Logger.getLogger("").getHandlers()) {
      if (!(h instanceof ConsoleHandler)) {
        continue;
      }
      if (!ownConfig) {
        h.setFormatter(formatter(format));
      }
      if (level != null && level.intValue() < h.getLevel().intValue()) {
        // The console handler filters at INFO by default: let rdzv's DEBUG records through (the
        // root logger still holds other libraries at INFO).
        h.setLevel(level);
      }
    }
    if (level != null) {
      RDZV.setLevel(level);
    }
  }

  /** Whether {@code LOGLEVEL} decides rdzv's level (then {@code --verbose} does not). */
  static boolean levelFromEnvironment(Map<String, String> env) {
    String v = env.get("LOGLEVEL");
    return v != null && !v.isBlank();
  }

  /**
   * {@code LOGLEVEL} as java.util.logging reads it: Python's names, in any case ({@code DEBUG},
   * {@code INFO}, {@code WARNING}/{@code WARN}, {@code ERROR}, {@code CRITICAL}/{@code FATAL});
   * {@code NOTSET} or absent leaves the default. torchrun refuses other values, and so does rdzv.
   */
  static Level level(String value) {
    if (value == null || value.isBlank()) {
      return null;
    }
    return switch (value.strip().toUpperCase(Locale.ROOT)) {
      case "DEBUG" -> Level.FINE;
      case "INFO" -> Level.INFO;
      case "WARNING", "WARN" -> Level.WARNING;
      case "ERROR" -> Level.SEVERE;
      // rdzv logs nothing above ERROR: CRITICAL silences it, as in Python.
      case "CRITICAL", "FATAL" -> Level.OFF;
      case "NOTSET" -> null;
      default ->
          throw new IllegalArgumentException(
              "LOGLEVEL '"
                  + value
                  + "' is not a log level; use DEBUG, INFO, WARNING, ERROR or CRITICAL.");
    };
  }

  /** Python's name of a java.util.logging level: DEBUG, INFO, WARNING, ERROR (TRACE below). */
  static String levelName(Level level) {
    int v = level.intValue();
    if (v >= Level.SEVERE.intValue()) {
      return "ERROR";
    }
    if (v >= Level.WARNING.intValue()) {
      return "WARNING";
    }
    if (v >= Level.INFO.intValue()) {
      return "INFO";
    }
    if (v >= Level.FINE.intValue()) {
      return "DEBUG";
    }
    return "TRACE";
  }

  /**
   * Adds a field to every JSON log line from now on (the command, the run id, the role), replacing
   * any value under {@code key}; {@code null} removes it.
   */
  static void context(String key, Object value) {
    CONTEXT_LOCK.lock();
    try {
      if (value == null) {
        CONTEXT.remove(key);
      } else {
        CONTEXT.put(key, value);
      }
    } finally {
      CONTEXT_LOCK.unlock();
    }
  }

  static Map<String, Object> context() {
    CONTEXT_LOCK.lock();
    try {
      return new LinkedHashMap<>(CONTEXT);
    } finally {
      CONTEXT_LOCK.unlock();
    }
  }

  static Formatter formatter(Format format) {
    if (format == Format.JSON) {
      return new JsonFormatter();
    }
    // Someone who set SimpleFormatter's format (RDZV_JAVA_OPTS) gets that format.
    return System.getProperty("java.util.logging.SimpleFormatter.format") != null
        ? new SimpleFormatter()
        : new TextFormatter();
  }

  /** {@code LEVEL:logger:message}, then the stack trace of a thrown error if the record has one. */
  static final class TextFormatter extends Formatter {
    @Override
    public String format(LogRecord r) {
      StringBuilder out =
          new StringBuilder()
              .append(levelName(r.getLevel()))
              .append(':')
              .append(r.getLoggerName())
              .append(':')
              .append(formatMessage(r))
              .append(System.lineSeparator());
      if (r.getThrown() != null) {
        out.append(org.rdzv.api.events.RdzvEvent.trace(r.getThrown()));
      }
      return out.toString();
    }
  }

  /**
   * One JSON object a line: {@code time} (UTC, ISO-8601 with milliseconds), {@code level} (Python's
   * names), {@code logger}, {@code message}, then {@code thread}, {@code pid}, {@code host}, the
   * command's context fields, and for a record with an error {@code error} (one line) and {@code
   * trace}.
   */
  static final class JsonFormatter extends Formatter {
    private static final DateTimeFormatter TIME =
        DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").withZone(ZoneOffset.UTC);
    private final long pid = ProcessHandle.current().pid();
    private final String host = RendezvousStoreInfo.fqdn();

    @Override
    public String format(LogRecord r) {
      Map<String, Object> line = new LinkedHashMap<>();
      line.put("time", TIME.format(Instant.ofEpochMilli(r.getMillis())));
      line.put("level", levelName(r.getLevel()));
      line.put("logger", r.getLoggerName());
      line.put("message", formatMessage(r));
      line.put("thread", Thread.currentThread().getName());
      line.put("pid", pid);
      line.put("host", host);
      context().forEach(line::putIfAbsent);
      if (r.getThrown() != null) {
        line.put("error", Errors.oneLine(r.getThrown()));
        line.put("trace", org.rdzv.api.events.RdzvEvent.trace(r.getThrown()));
      }
      return Json.write(line) + System.lineSeparator();
    }
  }
}
