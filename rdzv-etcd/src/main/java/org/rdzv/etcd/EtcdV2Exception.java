package org.rdzv.etcd;

/**
 * A failed etcd v2 request: an error etcd answered with (its {@code errorCode}), no member
 * reachable, an unreadable answer, or an interrupted wait.
 */
final class EtcdV2Exception extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** What kind of failure this is; {@link #ERROR} carries etcd's code. */
  enum Kind {
    ERROR,
    UNAVAILABLE,
    PROTOCOL,
    INTERRUPTED
  }

  /** etcd v2 error codes that the rendezvous code branches on (etcd's {@code error.go}). */
  static final int KEY_NOT_FOUND = 100;

  static final int TEST_FAILED = 101;
  static final int NOT_FILE = 102;
  static final int NOT_DIR = 104;
  static final int NODE_EXIST = 105;
  static final int EVENT_INDEX_CLEARED = 401;

  private final Kind kind;
  private final int errorCode;
  private final long etcdIndex;

  EtcdV2Exception(Kind kind, int errorCode, long etcdIndex, String message, Throwable cause) {
    super(message, cause);
    this.kind = kind;
    this.errorCode = errorCode;
    this.etcdIndex = etcdIndex;
  }

  static EtcdV2Exception unavailable(String message, Throwable cause) {
    return new EtcdV2Exception(Kind.UNAVAILABLE, 0, 0, message, cause);
  }

  static EtcdV2Exception interrupted(InterruptedException cause) {
    Thread.currentThread().interrupt();
    return new EtcdV2Exception(Kind.INTERRUPTED, 0, 0, "interrupted while talking to etcd", cause);
  }

  Kind kind() {
    return kind;
  }

  /** etcd's {@code errorCode} for {@link Kind#ERROR}, else 0. */
  int errorCode() {
    return errorCode;
  }

  /** The etcd index the error answer reported (useful to start a watch), or 0. */
  long etcdIndex() {
    return etcdIndex;
  }

  boolean is(int code) {
    return kind == Kind.ERROR && errorCode == code;
  }

  boolean keyNotFound() {
    return is(KEY_NOT_FOUND);
  }

  /** A compare-and-set lost: the compared value or index differed, or the key already existed. */
  boolean compareFailed() {
    return is(TEST_FAILED) || is(NODE_EXIST);
  }
}
