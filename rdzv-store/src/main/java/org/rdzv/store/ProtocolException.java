package org.rdzv.store;

/**
 * A connection sent something the protocol does not allow (unknown command, bad magic, a field past
 * a limit, a non-numeric ADD target). The server closes that connection; the message is the
 * one-line reason it logs.
 */
final class ProtocolException extends Exception {
  private static final long serialVersionUID = 1L;

  ProtocolException(String message) {
    super(message, null, false, false);
  }
}
