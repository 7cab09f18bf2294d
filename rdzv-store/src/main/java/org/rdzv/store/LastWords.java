package org.rdzv.store;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.lang.System.Logger.Level;

/**
 * The one line a dying server logs, prepared while it still has memory and descriptors: the error
 * that ends an event loop is often that one of them ran out.
 *
 * <p>At start it initializes the logging backend and formats a record through every handler, so
 * that configuration files, time zone data and formatter classes are loaded before descriptors can
 * run out; it keeps a reserve of heap that it gives back before logging, so that the line can be
 * formatted after an {@link OutOfMemoryError}; and if logging fails all the same, it writes the
 * line to the standard error descriptor itself, from a buffer allocated in advance.
 */
final class LastWords {
  private static final System.Logger LOG = System.getLogger(TcpStoreServer.class.getName());

  private static final int RESERVE =
      (int) Math.min(4L * 1024 * 1024, Math.max(256 * 1024, Runtime.getRuntime().maxMemory() / 64));

  private final String where;
  private final byte[] line = new byte[1024];
  private final FileOutputStream stderr = new FileOutputStream(FileDescriptor.err);
  private byte[] reserve = new byte[RESERVE];

  LastWords(String where) {
    this.where = where;
    warmUp(where);
  }

  /**
   * Logs that the server failed with {@code error} and stops with {@code connections} open; never
   * throws.
   */
  void say(Throwable error, int connections) {
    reserve = null;
    try {
      String message = describe(error);
      LOG.log(
          Level.ERROR,
          where
              + " failed: "
              + message
              + "; it stops and closes its "
              + connections
              + " connection"
              + (connections == 1 ? "" : "s"));
      if (LOG.isLoggable(Level.DEBUG)) {
        LOG.log(Level.DEBUG, "the error that stopped " + where, error);
      }
      return;
    } catch (Throwable again) {
      // Logging needs what just ran out: write the line ourselves.
    }
    raw(error);
  }

  /** {@code type: message} on one line. */
  static String describe(Throwable error) {
    String message = error.getMessage();
    String type = error.getClass().getName();
    if (message == null || message.isBlank()) {
      return type;
    }
    return type + ": " + message.replaceAll("\\s*\\R\\s*", " ").strip();
  }

  /** Writes "SEVERE:LOGGER:WHERE failed: TYPE: MESSAGE" to descriptor 2 without allocating. */
  private void raw(Throwable error) {
    try {
      int n = 0;
      n = put("SEVERE:", n);
      n = put(TcpStoreServer.class.getName(), n);
      n = put(":", n);
      n = put(where, n);
      n = put(" failed: ", n);
      n = put(error.getClass().getName(), n);
      String message = error.getMessage();
      if (message != null) {
        n = put(": ", n);
        n = put(message, n);
      }
      if (n < line.length) {
        line[n++] = '\n';
      } else {
        line[line.length - 1] = '\n';
      }
      stderr.write(line, 0, n);
      stderr.flush();
    } catch (IOException | RuntimeException | Error e) {
      // Nothing is left to say it with.
    }
  }

  private int put(String s, int at) {
    int n = at;
    for (int i = 0; i < s.length() && n < line.length - 1; i++) {
      char c = s.charAt(i);
      line[n++] = c < 0x20 || c > 0x7e ? (byte) ' ' : (byte) c;
    }
    return n;
  }

  /**
   * Makes the logging backend load everything it needs to print an error line now (its
   * configuration, its handlers, their formatters with whatever they format), without printing.
   */
  private static void warmUp(String where) {
    LOG.isLoggable(Level.ERROR);
    describe(new OutOfMemoryError("warm-up"));
    try {
      java.util.logging.Logger jul =
          java.util.logging.Logger.getLogger(TcpStoreServer.class.getName());
      java.util.logging.LogRecord record =
          new java.util.logging.LogRecord(java.util.logging.Level.SEVERE, "{0} failed: {1}");
      record.setParameters(new Object[] {where, "warm-up"});
      record.setLoggerName(jul.getName());
      for (java.util.logging.Logger l = jul; l != null; ) {
        for (java.util.logging.Handler h : l.getHandlers()) {
          java.util.logging.Formatter f = h.getFormatter();
          if (f != null) {
            f.format(record);
          }
        }
        l = l.getUseParentHandlers() ? l.getParent() : null;
      }
    } catch (RuntimeException | LinkageError e) {
      // Another logging backend, or a handler that cannot format this: nothing more to prepare.
    }
  }
}
