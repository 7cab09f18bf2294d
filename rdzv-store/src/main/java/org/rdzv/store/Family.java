package org.rdzv.store;

/** The two incompatible wire protocol families of PyTorch's TCPStore. */
enum Family {
  /** torch 1.13 (and 1.x): no handshake, SET = 0, a callback connection for WATCH_KEY. */
  V1,
  /** torch 2.4 and later: VALIDATE + magic first, every code shifted up by one. */
  V2;

  @Override
  public String toString() {
    return this == V1 ? "1.13" : "2.x";
  }
}
