package org.rdzv.api;

/**
 * Base of every rendezvous failure, the counterpart of PyTorch's {@code RendezvousError}.
 *
 * <p>Unchecked, like all exceptions in rdzv. Subclasses name the kind of failure; callers branch on
 * the type, never on the message text.
 */
public class RendezvousException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public RendezvousException(String message) {
    super(message);
  }

  public RendezvousException(String message, Throwable cause) {
    super(message, cause);
  }
}
