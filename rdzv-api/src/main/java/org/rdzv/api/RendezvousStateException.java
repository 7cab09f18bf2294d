package org.rdzv.api;

/**
 * Thrown when the shared rendezvous state could not be decoded (PyTorch's {@code
 * RendezvousStateError}).
 */
public class RendezvousStateException extends RendezvousException {
  private static final long serialVersionUID = 1L;

  public RendezvousStateException(String message) {
    super(message);
  }

  public RendezvousStateException(String message, Throwable cause) {
    super(message, cause);
  }
}
