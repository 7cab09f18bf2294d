package org.rdzv.api;

/**
 * Thrown when the backend (store or etcd) could not be reached or failed (PyTorch's {@code
 * RendezvousConnectionError}).
 */
public class RendezvousConnectionException extends RendezvousException {
  private static final long serialVersionUID = 1L;

  public RendezvousConnectionException(String message) {
    super(message);
  }

  public RendezvousConnectionException(String message, Throwable cause) {
    super(message, cause);
  }
}
