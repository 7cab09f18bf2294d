package org.rdzv.api.events;

/** PyTorch's {@code NodeState}: the state of a node that a {@link RdzvEvent} reports. */
public enum NodeState {
  INIT,
  RUNNING,
  SUCCEEDED,
  FAILED
}
