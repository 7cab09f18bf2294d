package org.rdzv.store;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.GatheringByteChannel;
import java.util.ArrayDeque;
import java.util.Iterator;

/**
 * The replies and events waiting to be written to one connection, in order. Small fields are packed
 * into a tail buffer; values of a kilobyte or more are queued by reference (stored values are never
 * modified, so no copy is needed). A full tail is handed over whole, never copied.
 *
 * <p>One {@link #writeTo} hands the channel at most 256 KiB: the JDK copies heap buffers into a
 * temporary direct buffer as large as what it is given, so an unread 8 MiB reply would otherwise
 * cost an 8 MiB copy per attempt and leave an 8 MiB direct buffer cached. A drained queue drops a
 * tail that grew, so an idle connection holds a few hundred bytes.
 */
final class OutputQueue {
  /** Values at least this long are queued by reference. */
  private static final int REFERENCE = 1024;

  /** A tail is sealed (handed over) rather than grown past this. */
  private static final int SEAL = 64 * 1024;

  private static final int FIRST_TAIL = 256;

  /** A drained tail larger than this is dropped. */
  private static final int KEEP_TAIL = 4096;

  private static final int MAX_WRITE = 256 * 1024;
  private static final int MAX_BUFFERS = 64;

  private final ArrayDeque<ByteBuffer> sealed = new ArrayDeque<>(0);

  /** Small fields not yet sealed, in write mode; allocated on first use. */
  private ByteBuffer tail;

  private ByteBuffer[] views;
  private ByteBuffer[] originals;
  private long pendingBytes;
  private long writtenBytes;

  long pendingBytes() {
    return pendingBytes;
  }

  boolean isEmpty() {
    return pendingBytes == 0;
  }

  /** Every byte written so far (for the bytes-sent counter). */
  long writtenBytes() {
    return writtenBytes;
  }

  private ByteBuffer tail(int room) {
    if (tail != null && tail.remaining() < room) {
      if (tail.position() + room > SEAL) {
        seal();
      } else {
        ByteBuffer bigger =
            ByteBuffer.allocate(
                    Math.min(SEAL, Math.max(tail.capacity() * 2, tail.position() + room)))
                .order(ByteOrder.LITTLE_ENDIAN);
        tail.flip();
        bigger.put(tail);
        tail = bigger;
      }
    }
    if (tail == null) {
      tail = ByteBuffer.allocate(Math.max(FIRST_TAIL, room)).order(ByteOrder.LITTLE_ENDIAN);
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
    if (value.length < REFERENCE) {
      tail(value.length).put(value);
    } else {
      seal();
      sealed.add(ByteBuffer.wrap(value));
    }
    pendingBytes += value.length;
  }

  /** A raw key as a u64 length followed by its bytes. */
  void putKey(String key) {
    int n = key.length();
    if (n >= REFERENCE) {
      putBytes(Request.keyBytes(key));
      return;
    }
    putLong(n);
    ByteBuffer t = tail(n);
    for (int i = 0; i < n; i++) {
      t.put((byte) key.charAt(i));
    }
    pendingBytes += n;
  }

  /** Moves the tail, if it holds anything, to the end of the sealed buffers. */
  private void seal() {
    if (tail != null && tail.position() > 0) {
      tail.flip();
      sealed.add(tail);
      tail = null;
    }
  }

  /** Writes as much as the channel takes; returns whether everything was written. */
  boolean writeTo(GatheringByteChannel channel) throws IOException {
    if (sealed.isEmpty()) {
      if (tail == null || tail.position() == 0) {
        return true;
      }
      tail.flip();
      int written = channel.write(tail);
      pendingBytes -= written;
      writtenBytes += written;
      if (tail.hasRemaining()) {
        tail.compact();
        return false;
      }
      tail.clear();
      drained();
      return true;
    }
    seal();
    if (views == null) {
      views = new ByteBuffer[MAX_BUFFERS];
      originals = new ByteBuffer[MAX_BUFFERS];
    }
    while (!sealed.isEmpty()) {
      int n = 0;
      long offered = 0;
      Iterator<ByteBuffer> it = sealed.iterator();
      while (it.hasNext() && n < MAX_BUFFERS && offered < MAX_WRITE) {
        ByteBuffer b = it.next();
        ByteBuffer view = b;
        long room = MAX_WRITE - offered;
        if (b.remaining() > room) {
          view = b.duplicate();
          view.limit(b.position() + (int) room);
        }
        originals[n] = b;
        views[n++] = view;
        offered += view.remaining();
      }
      long written;
      try {
        written = channel.write(views, 0, n);
      } finally {
        for (int i = 0; i < n; i++) {
          if (views[i] != originals[i]) {
            originals[i].position(views[i].position());
          }
          views[i] = null;
          originals[i] = null;
        }
      }
      pendingBytes -= written;
      writtenBytes += written;
      while (!sealed.isEmpty() && !sealed.peekFirst().hasRemaining()) {
        sealed.pollFirst();
      }
      if (written < offered) {
        return false;
      }
    }
    drained();
    return true;
  }

  /** Everything was written: give back what an output burst made us hold. */
  private void drained() {
    if (tail != null && tail.capacity() > KEEP_TAIL) {
      tail = null;
    }
    if (views != null) {
      views = null;
      originals = null;
    }
  }

  /** Forgets everything queued (the connection is closed). */
  void discard() {
    sealed.clear();
    tail = null;
    views = null;
    originals = null;
    pendingBytes = 0;
  }
}
