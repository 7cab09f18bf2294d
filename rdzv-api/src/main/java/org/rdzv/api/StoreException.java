package org.rdzv.api;

/**
 * A store operation failed: the connection broke, the server closed it (the TCPStore protocol
 * reports every error that way), or the request was refused locally.
 */
public class StoreException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public StoreException(String message) {
    super(message);
  }

  public StoreException(String message, Throwable cause) {
    super(message, cause);
  }
}
