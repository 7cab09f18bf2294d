package org.rdzv.api.events;

/**
 * An event of PyTorch's torchelastic events API: an agent or worker {@link Event}, or a rendezvous
 * {@link RdzvEvent}.
 */
public sealed interface ElasticEvent permits Event, RdzvEvent {

  /** The event's name, e.g. {@code torchelastic.worker.status.FAILED}. */
  String name();

  /**
   * The event as PyTorch's {@code serialize()} writes it: {@code json.dumps(asdict(event))}, one
   * line, the fields in PyTorch's order, so that PyTorch's {@code deserialize} reads it back.
   */
  String serialize();
}
