package org.rdzv.cli;

import java.nio.file.Path;
import org.rdzv.api.events.EventLog;
import org.rdzv.api.events.Events;
import picocli.CommandLine.Option;

/**
 * {@code --event-log FILE}: append every rendezvous and agent event of this process to FILE, one
 * JSON object a line, as PyTorch's events API serializes them.
 */
final class EventLogOption {
  @Option(
      names = {"--event-log"},
      paramLabel = "FILE",
      description =
          "Append every rendezvous and agent event to FILE, one JSON object a line (PyTorch's"
              + " RdzvEvent and Event).")
  Path file;

  /**
   * Opens the file and makes it a destination of {@link Events} until the returned handle is
   * closed; a no-op without {@code --event-log}.
   *
   * @throws java.io.UncheckedIOException if the file cannot be opened
   */
  Opened open() {
    if (file == null) {
      return Opened.NOTHING;
    }
    EventLog log = EventLog.open(file);
    Events.add(log);
    return () -> {
      Events.remove(log);
      log.close();
    };
  }
}
