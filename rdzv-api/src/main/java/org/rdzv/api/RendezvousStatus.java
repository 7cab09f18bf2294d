package org.rdzv.api;

import java.time.Instant;
import java.util.List;

/**
 * A rendezvous as a status tool shows it ({@code rdzv status}), read without joining, hosting or
 * writing anything: what {@link org.rdzv.api.spi.RendezvousHandlerProvider#readStatus} returns.
 *
 * <p>Each backend renders its own state, so the tool shows any backend, plug-ins included, without
 * knowing it. Implementations are immutable snapshots; {@code now} only turns the heartbeat times
 * they hold into ages.
 */
public interface RendezvousStatus {

  /** The run id of the rendezvous read. */
  String runId();

  /**
   * Lines for people: the first is {@code run_id=<id>} followed by {@code key=value} pairs, the
   * others (indented by two spaces) one per node, if the backend knows its nodes.
   */
  List<String> lines(Instant now);

  /** The same as one JSON object on one line, whose first member is {@code "run_id"}. */
  String toJson(Instant now);
}
