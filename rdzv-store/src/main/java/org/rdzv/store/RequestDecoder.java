package org.rdzv.store;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;

/**
 * Turns the byte stream of one connection into requests: an incremental state machine that looks at
 * every byte once, whatever the fragmentation (the 1.13 client sends each field in its own segment,
 * the 2.x client may split its handshake, a hostile client sends one byte at a time).
 *
 * <p>The first bytes choose the family: {@code 00 CE F7 85 3C} (VALIDATE + magic) is 2.x and is
 * consumed; anything else is 1.13 and is parsed as a 1.13 command (a 1.13 SET also starts with
 * {@code 00}, followed by the low half of its key length, which can only equal the magic for a key
 * of about 1 GB). Declared lengths are checked against the limits before any byte of the field is
 * awaited or allocated; a field that arrives in pieces is assembled in a buffer that grows with
 * what arrived, not with what was declared.
 *
 * <p>CHECK, WAIT, MULTI_GET and MULTI_SET are handed to a {@link StreamingSink} one key (or pair)
 * at a time as they arrive, so a request naming 131,072 keys is never held whole and is executed in
 * slices, interleaved with other connections. A {@link Sink} receives them whole instead.
 *
 * <p>A streaming sink may refuse an item for now (its connection has too many replies queued, or no
 * memory is left): the decoder keeps that item, stops consuming, and offers it again first on the
 * next {@link #feed}.
 *
 * <p>Not thread-safe: one decoder per connection, used by the server's event loop.
 */
final class RequestDecoder {
  /** Receives each decoded request whole, in stream order. */
  interface Sink {
    /** Handles one request; a {@link ProtocolException} stops decoding and closes the peer. */
    void accept(Request request) throws ProtocolException;

    /** Whether decoding should stop (the connection was closed while handling a request). */
    default boolean stopped() {
      return false;
    }
  }

  /** Receives requests, and the keys of multi-key requests one by one; may refuse for now. */
  interface StreamingSink {
    /** A request other than CHECK/WAIT/MULTI_GET/MULTI_SET; false: keep it and offer it later. */
    boolean offer(Request request) throws ProtocolException;

    /** A CHECK, WAIT, MULTI_GET or MULTI_SET of {@code count} keys begins. */
    void begin(Command command, int count) throws ProtocolException;

    /**
     * One key of the request begun last ({@code value} for MULTI_SET, else null); false: keep it
     * and offer it later.
     */
    boolean element(String key, byte[] value) throws ProtocolException;

    /** The request begun last has had all its keys. */
    void end() throws ProtocolException;

    /** Whether decoding should stop (the connection was closed while handling a request). */
    boolean stopped();

    /**
     * The decoder is about to hold {@code bytes} for a value that arrives in pieces; false: not now
     * (the decoder stops before the value's bytes and asks again on the next feed).
     */
    default boolean reserve(long bytes) throws ProtocolException {
      return true;
    }
  }

  /** Field kinds of a request's layout. */
  private static final int KEY = 0;

  private static final int VALUE = 1;
  private static final int I64 = 2;
  private static final int U32 = 3;

  private static final int[] NO_FIELDS = {};
  private static final int[] KEY_ONLY = {KEY};
  private static final int[] KEY_VALUE = {KEY, VALUE};
  private static final int[] KEY_TWO_VALUES = {KEY, VALUE, VALUE};
  private static final int[] KEY_NUMBER = {KEY, I64};
  private static final int[] NONCE = {U32};

  private enum Phase {
    /** Before a request's command byte. */
    COMMAND,
    /** The fields of a single request. */
    FIELDS,
    /** The key count of a multi-key request. */
    COUNT,
    /** An element's key. */
    ELEMENT_KEY,
    /** A MULTI_SET element's value. */
    ELEMENT_VALUE,
    /** A multi-key request has had all its elements. */
    END
  }

  private final Limits limits;
  private Family family;

  /** The first bytes, until they tell the family. */
  private final byte[] hello = new byte[5];

  private int helloFill;

  private Phase phase = Phase.COMMAND;
  private Command command;
  private int[] fields = NO_FIELDS;
  private int field;
  private int elementsLeft;

  /** A number arriving in pieces. */
  private final byte[] numberBytes = new byte[8];

  private int numberFill;
  private long number;

  /** A key or value: its declared length (-1 until read), its assembly buffer and fill. */
  private int bytesLength = -1;

  private byte[] assembly;
  private int assemblyFill;

  /** The last key or value read whole. */
  private String lastKey;

  private byte[] lastValue;

  /** The fields of the request being read. */
  private String key;

  private byte[] value0;
  private byte[] value1;
  private long requestNumber;
  private String elementKey;

  /** An item the sink refused for now. */
  private Request retainedRequest;

  private boolean retainedElement;
  private String retainedKey;
  private byte[] retainedValue;

  /** Bytes of the current, incomplete frame consumed so far (0 between frames). */
  private long frameBytes;

  private Accumulator accumulator;

  /** The sink of the {@link #feed} in progress. */
  private StreamingSink sink;

  /** Whether the sink refused to let a value be held: stop rather than wait for bytes. */
  private boolean refused;

  RequestDecoder(Limits limits) {
    this.limits = limits;
  }

  /** The connection's family, or {@code null} until its first bytes have been seen. */
  Family family() {
    return family;
  }

  /** Bytes of an incomplete request consumed so far; 0 between requests. */
  long pendingBytes() {
    return family == null ? helloFill : frameBytes;
  }

  /** Whether the connection stopped inside a request (a half-sent frame). */
  boolean midFrame() {
    return pendingBytes() > 0;
  }

  /** Whether an item the sink refused is waiting to be offered again. */
  boolean hasRetained() {
    return retainedRequest != null || retainedElement;
  }

  /** The capacity of the buffers holding partially received fields. */
  long heldBytes() {
    return assembly == null ? 0 : assembly.length;
  }

  /** Decodes every complete request in {@code data} and hands each whole to {@code sink}. */
  void feed(ByteBuffer data, Sink sink) throws ProtocolException {
    if (accumulator == null) {
      accumulator = new Accumulator();
    }
    accumulator.target = sink;
    feed(data, accumulator);
  }

  /**
   * Consumes {@code data}, handing complete requests and elements to {@code sink}, until the data
   * ends or the sink refuses an item or stops; then {@code data}'s position is at the first byte
   * not consumed.
   */
  void feed(ByteBuffer data, StreamingSink sink) throws ProtocolException {
    ByteOrder order = data.order();
    data.order(ByteOrder.LITTLE_ENDIAN);
    this.sink = sink;
    try {
      if (!offerRetained(sink)) {
        return;
      }
      if (family == null) {
        if (!detect(data)) {
          return;
        }
        if (family == Family.V1) {
          // The bytes that told the family are the start of a 1.13 request.
          ByteBuffer first = ByteBuffer.wrap(hello, 0, helloFill).order(ByteOrder.LITTLE_ENDIAN);
          helloFill = 0;
          if (!decode(first, sink)) {
            return;
          }
        }
      }
      decode(data, sink);
    } finally {
      data.order(order);
      this.sink = null;
    }
  }

  private boolean offerRetained(StreamingSink sink) throws ProtocolException {
    if (retainedRequest != null) {
      Request r = retainedRequest;
      retainedRequest = null;
      if (!sink.offer(r)) {
        retainedRequest = r;
        return false;
      }
    } else if (retainedElement) {
      retainedElement = false;
      String k = retainedKey;
      byte[] v = retainedValue;
      retainedKey = null;
      retainedValue = null;
      if (!sink.element(k, v)) {
        retain(k, v);
        return false;
      }
    }
    return true;
  }

  private void retain(String k, byte[] v) {
    retainedElement = true;
    retainedKey = k;
    retainedValue = v;
  }

  /** Collects the first bytes until they tell the family; false if more are needed. */
  private boolean detect(ByteBuffer b) {
    while (helloFill < hello.length && b.hasRemaining()) {
      byte x = b.get();
      hello[helloFill++] = x;
      if (helloFill == 1 && x != 0x00) {
        family = Family.V1;
        return true;
      }
    }
    if (helloFill < hello.length) {
      return false;
    }
    int magic =
        (hello[1] & 0xFF) | (hello[2] & 0xFF) << 8 | (hello[3] & 0xFF) << 16 | hello[4] << 24;
    if (magic == Wire.VALIDATION_MAGIC) {
      family = Family.V2;
      helloFill = 0;
    } else {
      family = Family.V1;
    }
    return true;
  }

  /** The main loop; false if it stopped because the sink refused an item or stopped. */
  private boolean decode(ByteBuffer b, StreamingSink sink) throws ProtocolException {
    while (!sink.stopped()) {
      switch (phase) {
        case COMMAND -> {
          if (!b.hasRemaining()) {
            return true;
          }
          int code = b.get() & 0xFF;
          frameBytes = 1;
          start(code);
        }
        case FIELDS -> {
          if (!readFields(b)) {
            return stopUnlessRefused();
          }
          Request r = build();
          endFrame();
          if (!sink.offer(r)) {
            retainedRequest = r;
            return false;
          }
        }
        case COUNT -> {
          if (!readNumber(b, 8)) {
            return true;
          }
          long n = number;
          if (n < 0 || n > limits.maxKeysPerRequest()) {
            throw new ProtocolException(
                ProtocolException.Reason.KEY_COUNT,
                "key count "
                    + Long.toUnsignedString(n)
                    + " exceeds the limit of "
                    + limits.maxKeysPerRequest());
          }
          elementsLeft = (int) n;
          sink.begin(command, elementsLeft);
          phase = elementsLeft == 0 ? Phase.END : Phase.ELEMENT_KEY;
        }
        case ELEMENT_KEY -> {
          if (!readBytes(b, KEY)) {
            return true;
          }
          if (command == Command.MULTI_SET) {
            elementKey = lastKey;
            phase = Phase.ELEMENT_VALUE;
          } else if (!element(sink, lastKey, null)) {
            return false;
          }
        }
        case ELEMENT_VALUE -> {
          if (!readBytes(b, VALUE)) {
            return stopUnlessRefused();
          }
          String k = elementKey;
          elementKey = null;
          if (!element(sink, k, lastValue)) {
            return false;
          }
        }
        case END -> {
          endFrame();
          sink.end();
        }
      }
    }
    return false;
  }

  /** After a field ran out of bytes: true (need more data), or false if the sink refused it. */
  private boolean stopUnlessRefused() {
    if (refused) {
      refused = false;
      return false;
    }
    return true;
  }

  private boolean element(StreamingSink sink, String k, byte[] v) throws ProtocolException {
    elementsLeft--;
    phase = elementsLeft == 0 ? Phase.END : Phase.ELEMENT_KEY;
    if (!sink.element(k, v)) {
      retain(k, v);
      return false;
    }
    return true;
  }

  private void endFrame() {
    phase = Phase.COMMAND;
    frameBytes = 0;
    command = null;
  }

  private void start(int code) throws ProtocolException {
    Command c = Command.of(family, code);
    if (c == null) {
      throw new ProtocolException(
          ProtocolException.Reason.UNKNOWN_COMMAND,
          String.format("unknown command byte 0x%02x for the %s protocol", code, family));
    }
    command = c;
    field = 0;
    key = null;
    value0 = null;
    value1 = null;
    requestNumber = 0;
    switch (c) {
      case VALIDATE ->
          throw new ProtocolException(
              ProtocolException.Reason.HANDSHAKE, "VALIDATE after the handshake is not allowed");
      case SET, APPEND, QUEUE_PUSH -> fields = KEY_VALUE;
      case COMPARE_SET -> fields = KEY_TWO_VALUES;
      case GET, DELETE_KEY, WATCH_KEY, QUEUE_POP, QUEUE_LEN -> fields = KEY_ONLY;
      case ADD -> fields = KEY_NUMBER;
      case PING -> fields = NONCE;
      case GETNUMKEYS, CANCEL_WAIT, LIST -> fields = NO_FIELDS;
      case CHECK, WAIT, MULTI_GET, MULTI_SET -> {
        phase = Phase.COUNT;
        return;
      }
    }
    phase = Phase.FIELDS;
  }

  /** Reads the single request's remaining fields; false if the data ended first. */
  private boolean readFields(ByteBuffer b) throws ProtocolException {
    while (field < fields.length) {
      switch (fields[field]) {
        case KEY -> {
          if (!readBytes(b, KEY)) {
            return false;
          }
          key = lastKey;
        }
        case VALUE -> {
          if (!readBytes(b, VALUE)) {
            return false;
          }
          if (value0 == null) {
            value0 = lastValue;
          } else {
            value1 = lastValue;
          }
        }
        case I64 -> {
          if (!readNumber(b, 8)) {
            return false;
          }
          requestNumber = number;
        }
        default -> {
          if (!readNumber(b, 4)) {
            return false;
          }
          requestNumber = number & 0xFFFF_FFFFL;
        }
      }
      field++;
    }
    return true;
  }

  private Request build() {
    return switch (fields.length) {
      case 0 -> Request.of(command);
      case 1 ->
          command == Command.PING
              ? new Request(command, Request.NO_KEYS, Request.NO_VALUES, requestNumber)
              : new Request(command, new String[] {key}, Request.NO_VALUES, 0);
      case 2 ->
          command == Command.ADD
              ? new Request(command, new String[] {key}, Request.NO_VALUES, requestNumber)
              : new Request(command, new String[] {key}, new byte[][] {value0}, 0);
      default -> new Request(command, new String[] {key}, new byte[][] {value0, value1}, 0);
    };
  }

  /** Reads a little-endian number of {@code width} bytes into {@link #number}. */
  private boolean readNumber(ByteBuffer b, int width) {
    if (numberFill == 0 && b.remaining() >= width) {
      number = width == 8 ? b.getLong() : b.getInt();
      frameBytes += width;
      return true;
    }
    int n = Math.min(width - numberFill, b.remaining());
    b.get(numberBytes, numberFill, n);
    numberFill += n;
    frameBytes += n;
    if (numberFill < width) {
      return false;
    }
    long v = 0;
    for (int i = width - 1; i >= 0; i--) {
      v = (v << 8) | (numberBytes[i] & 0xFF);
    }
    number = v;
    numberFill = 0;
    return true;
  }

  /**
   * Reads a length-prefixed key (into {@link #lastKey}) or value ({@link #lastValue}); false if the
   * data ended first or the sink refused to let the value be held ({@link #refused}).
   */
  private boolean readBytes(ByteBuffer b, int kind) throws ProtocolException {
    if (bytesLength < 0) {
      if (!readNumber(b, 8)) {
        return false;
      }
      long n = number;
      int max = kind == KEY ? limits.maxKeyLength() : limits.maxValueLength();
      if (n < 0 || n > max) {
        throw new ProtocolException(
            kind == KEY
                ? ProtocolException.Reason.KEY_LENGTH
                : ProtocolException.Reason.VALUE_LENGTH,
            (kind == KEY ? "key" : "value")
                + " length "
                + Long.toUnsignedString(n)
                + " exceeds the limit of "
                + max
                + " bytes");
      }
      bytesLength = (int) n;
      assemblyFill = 0;
    }
    int need = bytesLength - assemblyFill;
    if (assembly == null && b.remaining() >= need) {
      // The whole field is here: take it without an assembly buffer.
      if (kind == KEY) {
        lastKey = key(b, need);
      } else {
        byte[] v = new byte[need];
        b.get(v);
        lastValue = v;
      }
      frameBytes += need;
      bytesLength = -1;
      return true;
    }
    if (assembly == null) {
      // A value that arrives in pieces is held whole: its memory is asked for first, so that a
      // connection waiting for memory holds none (and gives none back late when its peer left).
      if (kind == VALUE && !sink.reserve(bytesLength)) {
        refused = true;
        return false;
      }
      assembly = new byte[bytesLength];
    }
    int n = Math.min(need, b.remaining());
    b.get(assembly, assemblyFill, n);
    assemblyFill += n;
    frameBytes += n;
    if (assemblyFill < bytesLength) {
      return false;
    }
    byte[] whole = assembly;
    assembly = null;
    bytesLength = -1;
    if (kind == KEY) {
      lastKey = Request.key(whole);
    } else {
      lastValue = whole;
    }
    return true;
  }

  private static String key(ByteBuffer b, int n) {
    if (b.hasArray()) {
      String k =
          new String(b.array(), b.arrayOffset() + b.position(), n, StandardCharsets.ISO_8859_1);
      b.position(b.position() + n);
      return k;
    }
    byte[] raw = new byte[n];
    b.get(raw);
    return Request.key(raw);
  }

  /** Collects the elements of a multi-key request into one {@link Request} for a plain sink. */
  private static final class Accumulator implements StreamingSink {
    Sink target;
    private Command command;
    private String[] keys;
    private byte[][] values;
    private int count;

    @Override
    public boolean offer(Request request) throws ProtocolException {
      target.accept(request);
      return true;
    }

    @Override
    public void begin(Command c, int n) {
      command = c;
      keys = new String[n];
      values = c == Command.MULTI_SET ? new byte[n][] : Request.NO_VALUES;
      count = 0;
    }

    @Override
    public boolean element(String k, byte[] v) {
      keys[count] = k;
      if (v != null) {
        values[count] = v;
      }
      count++;
      return true;
    }

    @Override
    public void end() throws ProtocolException {
      Request r = new Request(command, keys, values, 0);
      keys = null;
      values = null;
      target.accept(r);
    }

    @Override
    public boolean stopped() {
      return target.stopped();
    }
  }
}
