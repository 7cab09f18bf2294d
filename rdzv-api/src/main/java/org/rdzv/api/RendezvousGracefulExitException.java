package org.rdzv.api;

/**
 * Thrown when a spare node found the rendezvous closed and should end cleanly, not as a failure
 * (PyTorch 2.x's {@code RendezvousGracefulExitError}).
 */
public class RendezvousGracefulExitException extends RendezvousException {
  private static final long serialVersionUID = 1L;

  public RendezvousGracefulExitException(String message) {
    super(message);
  }

  public RendezvousGracefulExitException(String message, Throwable cause) {
    super(message, cause);
  }
}
