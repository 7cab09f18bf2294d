package org.rdzv.api;

/** A blocking store operation ({@code get}, {@code await}, connecting) ran out of time. */
public class StoreTimeoutException extends StoreException {
  private static final long serialVersionUID = 1L;

  public StoreTimeoutException(String message) {
    super(message);
  }

  public StoreTimeoutException(String message, Throwable cause) {
    super(message, cause);
  }
}
