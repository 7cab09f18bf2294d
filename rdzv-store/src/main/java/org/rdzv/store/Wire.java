package org.rdzv.store;

/** Constants of the TCPStore wire protocol shared by the server and the client. */
final class Wire {
  private Wire() {}

  /** The u32 that follows VALIDATE, sent little-endian as {@code CE F7 85 3C}. */
  static final int VALIDATION_MAGIC = 0x3C85F7CE;

  /** CHECK reply: every key exists. */
  static final byte READY = 0x00;

  /** CHECK reply: a key is missing. */
  static final byte NOT_READY = 0x01;

  /** WAIT reply: every key is present. */
  static final byte STOP_WAITING = 0x00;

  /** CANCEL_WAIT reply (2.x). */
  static final byte WAIT_CANCELED = 0x01;

  /** WATCH_KEY reply on the 1.13 callback connection. */
  static final byte KEY_CALLBACK_REGISTERED = 0x03;

  /** The internal key torch workers count themselves under; sent without the {@code /} prefix. */
  static final String INIT_KEY = "init/";

  /** The prefix every user key gets on the wire. */
  static final String KEY_PREFIX = "/";
}
