package org.rdzv.store;

import java.util.Locale;

/**
 * Which TCPStore protocol family a {@link TcpStore} client speaks (option {@code store_protocol}).
 */
public enum StoreProtocol {
  /**
   * Detect: try the 2.x handshake (VALIDATE + PING), then 2.4's (VALIDATE only), then fall back to
   * 1.13. Against a 2.x server (or {@link TcpStoreServer}) this costs nothing extra; against a 1.13
   * server it costs two refused connection attempts.
   */
  AUTO("auto"),
  /** The torch 1.13 protocol: no handshake, a callback connection for {@link TcpStore#watchKey}. */
  V1_13("1.13"),
  /** The torch 2.x protocol (2.4 and later): VALIDATE, PING when the server knows it. */
  V2("2");

  private final String text;

  StoreProtocol(String text) {
    this.text = text;
  }

  /** The option value: {@code auto}, {@code 1.13} or {@code 2}. */
  public String text() {
    return text;
  }

  /**
   * Parses {@code auto}, {@code 1.13} (also {@code 1}, {@code v1}) or {@code 2} (also {@code 2.x},
   * {@code v2}).
   *
   * @throws IllegalArgumentException naming the accepted values
   */
  public static StoreProtocol parse(String value) {
    String v = value == null ? "" : value.strip().toLowerCase(Locale.ROOT);
    return switch (v) {
      case "auto", "" -> AUTO;
      case "1.13", "1", "v1", "1.x" -> V1_13;
      case "2", "2.x", "v2" -> V2;
      default ->
          throw new IllegalArgumentException(
              "store_protocol must be one of auto, 1.13, 2; got '" + value + "'");
    };
  }

  @Override
  public String toString() {
    return text;
  }
}
