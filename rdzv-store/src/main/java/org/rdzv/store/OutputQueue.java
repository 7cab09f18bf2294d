package org.rdzv.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.GatheringByteChannel;
import java.util.ArrayDeque;

/**
 * The replies and events waiting to be written to one connection, in order. Small fields are packed
 * into one buffer; large values are queued by reference (stored values are never modified, so no
 * copy is needed).
 */
final class OutputQueue {
  private static final int LARGE = 4096;

  private final ArrayDeque<ByteBuffer> sealed = new ArrayDeque<>();

  /** Small fields not yet sealed, in write mode; allocated on first use. */
  private ByteBuffer tail;

  private long pendingBytes;

  long pendingBytes() {
    return pendingBytes;
  }

  boolean isEmpty() {
    return pendingBytes == 0;
  }

  private ByteBuffer tail(int room) {
    if (tail == null) {
      tail = ByteBuffer.allocate(Math.max(256, room)).order(ByteOrder.LITTLE_ENDIAN);
    } else if (tail.remaining() < room) {
      ByteBuffer bigger =
          ByteBuffer.allocate(Math.max(tail.capacity() * 2, tail.position() + room))
              .order(ByteOrder.LITTLE_ENDIAN);
      tail.flip();
      bigger.put(tail);
      tail = bigger;
    }
    return tail;
  }

  void putByte(byte b) {
    tail(1).put(b);
    pendingBytes += 1;
  }

  void putLong(long v) {
    tail(8).putLong(v);
    pendingBytes += 8;
  }

  void putInt(int v) {
    tail(4).putInt(v);
    pendingBytes += 4;
  }

  /** A u64 length followed by the bytes. */
  void putBytes(byte[] value) {
    putLong(value.length);
    if (value.length < LARGE) {
      tail(value.length).put(value);
    } else {
      seal();
      sealed.add(ByteBuffer.wrap(value));
    }
    pendingBytes += value.length;
  }

  /** A raw key as a u64 length followed by its bytes. */
  void putKey(String key) {
    putBytes(Request.keyBytes(key));
  }

  private void seal() {
    if (tail != null && tail.position() > 0) {
      tail.flip();
      ByteBuffer copy = ByteBuffer.allocate(tail.remaining());
      copy.put(tail).flip();
      sealed.add(copy);
      tail.clear();
    }
  }

  /** Writes as much as the channel takes; returns whether everything was written. */
  boolean writeTo(GatheringByteChannel channel) throws IOException {
    while (!sealed.isEmpty()) {
      ByteBuffer[] buffers = sealed.toArray(new ByteBuffer[0]);
      long written = channel.write(buffers);
      pendingBytes -= written;
      while (!sealed.isEmpty() && !sealed.peekFirst().hasRemaining()) {
        sealed.pollFirst();
      }
      if (!sealed.isEmpty()) {
        return false;
      }
    }
    if (tail != null && tail.position() > 0) {
      tail.flip();
      int written = channel.write(tail);
      pendingBytes -= written;
      tail.compact();
      return tail.position() == 0;
    }
    return true;
  }
}
