package org.rdzv.store;

import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * A connection without a socket: bytes go through a {@link RequestDecoder} into a shared {@link
 * StoreState}; replies collect in the session's output. Feeding can be whole, byte by byte or in
 * random fragments.
 */
final class Harness {
  enum Split {
    WHOLE,
    BYTE_BY_BYTE,
    RANDOM
  }

  final StoreState state;
  final Session session = new Session(null);
  final RequestDecoder decoder;
  final List<Request> requests = new ArrayList<>();
  private final Random random = new Random(42);
  boolean closed;

  Harness(StoreState state, Limits limits) {
    this.state = state;
    this.decoder = new RequestDecoder(limits);
  }

  Harness(StoreState state) {
    this(state, Limits.LIBUV);
  }

  /** Feeds {@code bytes} split as asked; throws the ProtocolException that would close it. */
  void feed(byte[] bytes, Split split) throws ProtocolException {
    int i = 0;
    while (i < bytes.length) {
      int n =
          switch (split) {
            case WHOLE -> bytes.length;
            case BYTE_BY_BYTE -> 1;
            case RANDOM -> 1 + random.nextInt(Math.min(bytes.length - i, 13));
          };
      n = Math.min(n, bytes.length - i);
      // Copy into a fresh buffer each time, with junk around it, as the server's reuse would.
      ByteBuffer chunk = ByteBuffer.allocate(n + 8);
      chunk.position(4);
      chunk.put(bytes, i, n);
      chunk.flip();
      chunk.position(4);
      try {
        decoder.feed(
            chunk,
            request -> {
              if (session.family == null) {
                session.family = decoder.family();
              }
              requests.add(request);
              state.execute(session, request);
            });
      } catch (ProtocolException e) {
        closed = true;
        state.disconnected(session);
        throw e;
      }
      i += n;
    }
  }

  void feed(byte[] bytes) throws ProtocolException {
    feed(bytes, Split.WHOLE);
  }

  /** Output queued since the last call, written through a channel as the server would. */
  byte[] output() {
    java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
    java.nio.channels.WritableByteChannel sink = java.nio.channels.Channels.newChannel(bytes);
    java.nio.channels.GatheringByteChannel channel =
        new java.nio.channels.GatheringByteChannel() {
          @Override
          public long write(ByteBuffer[] srcs, int offset, int length) throws java.io.IOException {
            long n = 0;
            for (int i = offset; i < offset + length; i++) {
              n += sink.write(srcs[i]);
            }
            return n;
          }

          @Override
          public long write(ByteBuffer[] srcs) throws java.io.IOException {
            return write(srcs, 0, srcs.length);
          }

          @Override
          public int write(ByteBuffer src) throws java.io.IOException {
            return sink.write(src);
          }

          @Override
          public boolean isOpen() {
            return true;
          }

          @Override
          public void close() {}
        };
    try {
      if (!session.out.writeTo(channel)) {
        throw new AssertionError("a blocking channel took only part of the output");
      }
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }
}
