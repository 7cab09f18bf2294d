package org.rdzv.api;

/** Thrown when the rendezvous is closed for good (PyTorch's {@code RendezvousClosedError}). */
public class RendezvousClosedException extends RendezvousException {
  private static final long serialVersionUID = 1L;

  public RendezvousClosedException(String message) {
    super(message);
  }

  public RendezvousClosedException(String message, Throwable cause) {
    super(message, cause);
  }
}
