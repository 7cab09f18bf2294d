package org.rdzv.api.events;

/** PyTorch's {@code EventSource}: who produced an {@link Event}. */
public enum EventSource {
  AGENT,
  WORKER
}
