package org.rdzv.api;

/** Thrown when an operation passed its deadline (PyTorch's {@code RendezvousTimeoutError}). */
public class RendezvousTimeoutException extends RendezvousException {
  private static final long serialVersionUID = 1L;

  public RendezvousTimeoutException(String message) {
    super(message);
  }

  public RendezvousTimeoutException(String message, Throwable cause) {
    super(message, cause);
  }
}
