package org.rdzv.store;

import java.util.Locale;

/**
 * A connection sent something the protocol does not allow (unknown command, bad magic, a field past
 * a limit, a non-numeric ADD target), or more than the server's limits let it hold. The server
 * closes that connection; the message is the one-line reason it logs, the {@link Reason} the label
 * of the {@code rdzv_store_frames_rejected_total} counter.
 */
final class ProtocolException extends Exception {
  private static final long serialVersionUID = 1L;

  /** Why a connection was closed; {@link #label()} is the metric's {@code reason} tag. */
  enum Reason {
    UNKNOWN_COMMAND,
    HANDSHAKE,
    KEY_LENGTH,
    VALUE_LENGTH,
    KEY_COUNT,
    REPLY_LENGTH,
    NOT_A_NUMBER,
    MISSING_KEY,
    MEMORY,
    FRAME_TIMEOUT,
    DRAIN_TIMEOUT;

    private final String label = name().toLowerCase(Locale.ROOT);

    String label() {
      return label;
    }
  }

  private final Reason reason;

  ProtocolException(Reason reason, String message) {
    super(message, null, false, false);
    this.reason = reason;
  }

  Reason reason() {
    return reason;
  }
}
