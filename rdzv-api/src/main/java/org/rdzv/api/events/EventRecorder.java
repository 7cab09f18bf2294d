package org.rdzv.api.events;

/**
 * Where recorded events go: PyTorch's event handler destinations. {@link Events#add} registers one
 * for the process; {@link EventLog} writes one JSON object a line to a file.
 *
 * <p>Called on the thread that records the event (a rendezvous operation, the agent's loop, a
 * heartbeat), possibly by several threads at once: an implementation is thread-safe, returns
 * quickly and does not throw (a recorder that throws is logged and skipped; the operation goes on).
 */
@FunctionalInterface
public interface EventRecorder {
  void record(ElasticEvent event);
}
