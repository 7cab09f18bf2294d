package org.rdzv.store;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Turns the byte stream of one connection into {@link Request}s: a pure stream parser that accepts
 * any fragmentation (the 1.13 client sends each field in its own segment, the 2.x client may split
 * its handshake).
 *
 * <p>The first bytes choose the family: {@code 00 CE F7 85 3C} (VALIDATE + magic) is 2.x and is
 * consumed; anything else is 1.13 and is parsed as a 1.13 command (a 1.13 SET also starts with
 * {@code 00}, followed by the low half of its key length, which can only equal the magic for a key
 * of about 1 GB). Declared lengths are checked against the limits before any byte of the field is
 * awaited or allocated.
 *
 * <p>Not thread-safe: one decoder per connection, used by the server's event loop.
 */
final class RequestDecoder {
  /** Receives each decoded request, in stream order. */
  interface Sink {
    /** Handles one request; a {@link ProtocolException} stops decoding and closes the peer. */
    void accept(Request request) throws ProtocolException;

    /** Whether decoding should stop (the connection was closed while handling a request). */
    default boolean stopped() {
      return false;
    }
  }

  /** Thrown (without a stack trace) when the buffer ends inside a request. */
  private static final class NeedMore extends RuntimeException {
    private static final long serialVersionUID = 1L;

    NeedMore() {
      super(null, null, false, false);
    }
  }

  private static final NeedMore NEED_MORE = new NeedMore();

  private final Limits limits;
  private Family family;

  /** Bytes received but not yet decoded, in read mode; null when there are none. */
  private ByteBuffer pending;

  RequestDecoder(Limits limits) {
    this.limits = limits;
  }

  /** The connection's family, or {@code null} until its first bytes have been seen. */
  Family family() {
    return family;
  }

  /** Bytes held back because they do not yet form a whole request. */
  int pendingBytes() {
    return pending == null ? 0 : pending.remaining();
  }

  /**
   * Decodes every complete request in {@code pending + data} and hands each to {@code sink}.
   * Leftover bytes are copied and kept; {@code data} is consumed entirely.
   */
  void feed(ByteBuffer data, Sink sink) throws ProtocolException {
    ByteBuffer work;
    if (pending != null) {
      append(data);
      work = pending;
    } else {
      work = data;
    }
    work.order(ByteOrder.LITTLE_ENDIAN);
    try {
      while (work.hasRemaining() && !sink.stopped()) {
        if (family == null && !detect(work)) {
          break;
        }
        if (!work.hasRemaining()) {
          break;
        }
        Request request = parse(work);
        if (request == null) {
          break;
        }
        sink.accept(request);
      }
    } finally {
      if (work == data) {
        if (data.hasRemaining() && !sink.stopped()) {
          pending = ByteBuffer.allocate(Math.max(256, data.remaining() * 2));
          pending.put(data).flip();
        }
        data.position(data.limit());
      } else if (!pending.hasRemaining()) {
        pending = null;
      }
    }
  }

  private void append(ByteBuffer data) {
    pending.compact();
    if (pending.remaining() < data.remaining()) {
      int needed = pending.position() + data.remaining();
      ByteBuffer bigger = ByteBuffer.allocate(Math.max(needed, pending.capacity() * 2));
      pending.flip();
      bigger.put(pending);
      pending = bigger;
    }
    pending.put(data);
    pending.flip();
  }

  /** Chooses the family from the first bytes; false if more bytes are needed. */
  private boolean detect(ByteBuffer b) throws ProtocolException {
    int p = b.position();
    if (b.get(p) != 0x00) {
      family = Family.V1;
      return true;
    }
    if (b.remaining() < 5) {
      return false;
    }
    if (b.getInt(p + 1) == Wire.VALIDATION_MAGIC) {
      family = Family.V2;
      b.position(p + 5);
    } else {
      family = Family.V1;
    }
    return true;
  }

  /** Parses one request at the buffer's position; null (position unchanged) if incomplete. */
  private Request parse(ByteBuffer b) throws ProtocolException {
    int start = b.position();
    Cursor c = new Cursor(b, start + 1);
    int code = b.get(start) & 0xFF;
    Command command = Command.of(family, code);
    if (command == null) {
      throw new ProtocolException(
          String.format("unknown command byte 0x%02x for the %s protocol", code, family));
    }
    try {
      Request request =
          switch (command) {
            case VALIDATE ->
                throw new ProtocolException("VALIDATE after the handshake is not allowed");
            case SET, APPEND, QUEUE_PUSH -> {
              String key = c.key();
              byte[] value = c.value();
              yield new Request(command, new String[] {key}, new byte[][] {value}, 0);
            }
            case COMPARE_SET -> {
              String key = c.key();
              byte[] expected = c.value();
              byte[] desired = c.value();
              yield new Request(command, new String[] {key}, new byte[][] {expected, desired}, 0);
            }
            case GET, DELETE_KEY, WATCH_KEY, QUEUE_POP, QUEUE_LEN ->
                new Request(command, new String[] {c.key()}, Request.NO_VALUES, 0);
            case ADD -> {
              String key = c.key();
              long delta = c.i64();
              yield new Request(command, new String[] {key}, Request.NO_VALUES, delta);
            }
            case CHECK, WAIT, MULTI_GET -> {
              int n = c.count();
              String[] keys = new String[n];
              for (int i = 0; i < n; i++) {
                keys[i] = c.key();
              }
              yield new Request(command, keys, Request.NO_VALUES, 0);
            }
            case MULTI_SET -> {
              int n = c.count();
              String[] keys = new String[n];
              byte[][] values = new byte[n][];
              for (int i = 0; i < n; i++) {
                keys[i] = c.key();
                values[i] = c.value();
              }
              yield new Request(command, keys, values, 0);
            }
            case PING -> new Request(command, Request.NO_KEYS, Request.NO_VALUES, c.u32());
            case GETNUMKEYS, CANCEL_WAIT, LIST -> Request.of(command);
          };
      b.position(c.pos);
      return request;
    } catch (NeedMore e) {
      return null;
    }
  }

  /** Reads fields at absolute positions; throws {@link #NEED_MORE} past the buffer's limit. */
  private final class Cursor {
    private final ByteBuffer b;
    private int pos;

    Cursor(ByteBuffer b, int pos) {
      this.b = b;
      this.pos = pos;
    }

    private void need(long n) {
      if (b.limit() - pos < n) {
        throw NEED_MORE;
      }
    }

    long i64() {
      need(8);
      long v = b.getLong(pos);
      pos += 8;
      return v;
    }

    long u32() {
      need(4);
      long v = Integer.toUnsignedLong(b.getInt(pos));
      pos += 4;
      return v;
    }

    private int length(String what, int max) throws ProtocolException {
      long n = i64();
      if (n < 0 || n > max) {
        throw new ProtocolException(
            what
                + " length "
                + Long.toUnsignedString(n)
                + " exceeds the limit of "
                + max
                + " bytes");
      }
      return (int) n;
    }

    private byte[] bytes(int n) {
      need(n);
      byte[] out = new byte[n];
      b.get(pos, out);
      pos += n;
      return out;
    }

    String key() throws ProtocolException {
      int n = length("key", limits.maxKeyLength());
      need(n);
      byte[] raw = bytes(n);
      return Request.key(raw);
    }

    byte[] value() throws ProtocolException {
      return bytes(length("value", limits.maxValueLength()));
    }

    int count() throws ProtocolException {
      long n = i64();
      if (n < 0 || n > limits.maxKeysPerRequest()) {
        throw new ProtocolException(
            "key count "
                + Long.toUnsignedString(n)
                + " exceeds the limit of "
                + limits.maxKeysPerRequest());
      }
      return (int) n;
    }
  }
}
