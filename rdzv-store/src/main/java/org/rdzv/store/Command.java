package org.rdzv.store;

/**
 * The TCPStore commands with their wire codes in both protocol families (PyTorch's {@code
 * QueryType}). The codes are explicit: the 2.x family shifts every 1.13 code up by one, except
 * DELETE_KEY, and adds commands 1.13 does not know.
 */
enum Command {
  VALIDATE(-1, 0x00),
  SET(0x00, 0x01),
  COMPARE_SET(0x01, 0x02),
  GET(0x02, 0x03),
  ADD(0x03, 0x04),
  CHECK(0x04, 0x05),
  WAIT(0x05, 0x06),
  GETNUMKEYS(0x06, 0x07),
  WATCH_KEY(0x07, -1),
  DELETE_KEY(0x08, 0x08),
  APPEND(-1, 0x09),
  MULTI_GET(-1, 0x0A),
  MULTI_SET(-1, 0x0B),
  CANCEL_WAIT(-1, 0x0C),
  PING(-1, 0x0D),
  QUEUE_PUSH(-1, 0x0E),
  QUEUE_POP(-1, 0x0F),
  QUEUE_LEN(-1, 0x10),
  LIST(-1, 0x11);

  private static final Command[] V1 = new Command[256];
  private static final Command[] V2 = new Command[256];

  static {
    for (Command c : values()) {
      if (c.v1Code >= 0) {
        V1[c.v1Code] = c;
      }
      if (c.v2Code >= 0) {
        V2[c.v2Code] = c;
      }
    }
  }

  private final int v1Code;
  private final int v2Code;

  Command(int v1Code, int v2Code) {
    this.v1Code = v1Code;
    this.v2Code = v2Code;
  }

  /** The command byte in {@code family}, or -1 when the family lacks the command. */
  int code(Family family) {
    return family == Family.V1 ? v1Code : v2Code;
  }

  /** The command a byte stands for in {@code family}, or {@code null} for an unknown byte. */
  static Command of(Family family, int code) {
    return (family == Family.V1 ? V1 : V2)[code & 0xFF];
  }
}
