package org.rdzv.api.events;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.locks.ReentrantLock;

/**
 * An {@link EventRecorder} that appends each event to a file as one line, {@link
 * ElasticEvent#serialize()} (one JSON object a line, what PyTorch's events logger writes), and
 * flushes it at once so that a reader (or a crash) sees every event recorded so far. A write that
 * fails is logged once at WARNING; the rest are dropped silently, so a full disk does not fail a
 * rendezvous. Thread-safe; lines of concurrent events never interleave.
 */
public final class EventLog implements EventRecorder, AutoCloseable {
  private static final System.Logger LOG = System.getLogger(EventLog.class.getName());

  private final Path path;
  private final Writer out;
  private final ReentrantLock lock = new ReentrantLock();
  private boolean failed;
  private boolean closed;

  private EventLog(Path path, Writer out) {
    this.path = path;
    this.out = out;
  }

  /**
   * Opens {@code path} for appending, creating it (and its parent directories) if needed.
   *
   * @throws UncheckedIOException if the file cannot be opened, naming it
   */
  public static EventLog open(Path path) {
    try {
      Path parent = path.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      Writer out =
          Files.newBufferedWriter(
              path,
              StandardCharsets.UTF_8,
              StandardOpenOption.CREATE,
              StandardOpenOption.APPEND,
              StandardOpenOption.WRITE);
      return new EventLog(path, out);
    } catch (IOException e) {
      throw new UncheckedIOException(
          "cannot open the event log " + path + ": " + e.getMessage(), e);
    }
  }

  /** The file this log appends to. */
  public Path path() {
    return path;
  }

  @Override
  public void record(ElasticEvent event) {
    String line = event.serialize();
    lock.lock();
    try {
      if (closed || failed) {
        return;
      }
      out.write(line);
      out.write('\n');
      out.flush();
    } catch (IOException e) {
      failed = true;
      LOG.log(
          Level.WARNING,
          "cannot write to the event log {0} ({1}); dropping events from now on",
          path,
          e.toString());
    } finally {
      lock.unlock();
    }
  }

  /** Flushes and closes the file; events recorded after are dropped. Idempotent. */
  @Override
  public void close() {
    lock.lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
      out.close();
    } catch (IOException e) {
      LOG.log(Level.WARNING, "cannot close the event log {0}: {1}", path, e.toString());
    } finally {
      lock.unlock();
    }
  }
}
