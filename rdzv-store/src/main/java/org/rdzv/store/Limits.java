package org.rdzv.store;

/** Per-request limits the server enforces while decoding; past one, the connection is closed. */
record Limits(int maxKeyLength, int maxValueLength, int maxKeysPerRequest) {
  /** The limits of PyTorch 2.x's default (libuv) server. */
  static final Limits LIBUV = new Limits(8192, 8 * 1024 * 1024, 128 * 1024);
}
