package org.rdzv.api.events;

import java.lang.System.Logger.Level;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The process's event destinations: PyTorch's {@code torch.distributed.elastic.events.record}. The
 * rendezvous handlers and the agent record here; nothing is kept unless a recorder is {@linkplain
 * #add added} (as PyTorch's default destinations discard events), and producers skip building
 * events while {@link #enabled()} is false. Thread-safe.
 */
public final class Events {
  private static final System.Logger LOG = System.getLogger(Events.class.getName());
  private static final List<EventRecorder> RECORDERS = new CopyOnWriteArrayList<>();

  private Events() {}

  /** Adds a destination for every event recorded from now on, until {@link #remove}. */
  public static void add(EventRecorder recorder) {
    RECORDERS.add(Objects.requireNonNull(recorder, "recorder"));
  }

  /** Removes a destination added before; does nothing if it is not there. */
  public static void remove(EventRecorder recorder) {
    RECORDERS.remove(recorder);
  }

  /** Whether any destination is registered: producers build events only then. */
  public static boolean enabled() {
    return !RECORDERS.isEmpty();
  }

  /**
   * Hands {@code event} to every destination, in the order they were added. Never throws: a
   * destination that fails is logged at WARNING and the others still get the event.
   */
  public static void record(ElasticEvent event) {
    for (EventRecorder recorder : RECORDERS) {
      try {
        recorder.record(event);
      } catch (RuntimeException e) {
        LOG.log(Level.WARNING, "an event recorder failed on {0}: {1}", event.name(), e.toString());
      }
    }
  }
}
