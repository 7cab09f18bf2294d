package org.rdzv.dynamic;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import org.rdzv.api.Store;
import org.rdzv.api.StoreException;
import org.rdzv.api.StoreTimeoutException;

/**
 * PyTorch's {@code FileStore} file format: an append-only log of records {@code u32 length, key,
 * u32 length, value} (little-endian), user keys written as {@code "/" + key}, a deletion written as
 * the key {@code "-/" + key} with an empty value, counters as decimal text. Readers replay the log;
 * blocking calls poll every 10 ms, as PyTorch does.
 *
 * <p>Locking: a whole-file lock around every operation. Java's lock is a POSIX record lock, which
 * on Linux does not exclude PyTorch's {@code flock}: Java processes exclude each other, but a Java
 * and a PyTorch process appending at the same instant are not serialized (see the module docs).
 */
final class FileStore implements Store {
  private static final Map<Path, ReentrantLock> JVM_LOCKS = new ConcurrentHashMap<>();

  private final Path path;
  private final ReentrantLock jvmLock;
  private final Map<String, byte[]> cache = new HashMap<>();
  private long position;
  private volatile Duration timeout;

  private FileStore(Path path, Duration timeout) {
    this.path = path.toAbsolutePath().normalize();
    this.jvmLock = JVM_LOCKS.computeIfAbsent(this.path, p -> new ReentrantLock());
    this.timeout = timeout;
  }

  static FileStore open(Path path, Duration timeout) {
    FileStore store = new FileStore(path, timeout);
    store.locked(true, ch -> null);
    return store;
  }

  private interface Op<T> {
    T run(FileChannel channel) throws IOException;
  }

  private <T> T locked(boolean write, Op<T> op) {
    jvmLock.lock();
    try (FileChannel ch =
            write
                ? FileChannel.open(
                    path,
                    StandardOpenOption.READ,
                    StandardOpenOption.WRITE,
                    StandardOpenOption.CREATE)
                : FileChannel.open(path, StandardOpenOption.READ);
        FileLock lock = ch.lock(0, Long.MAX_VALUE, !write)) {
      return op.run(ch);
    } catch (IOException e) {
      throw new StoreException("FileStore " + path + ": " + e.getMessage(), e);
    } finally {
      jvmLock.unlock();
    }
  }

  private void refresh(FileChannel ch) throws IOException {
    long size = ch.size();
    while (position < size) {
      String key = new String(readField(ch), StandardCharsets.UTF_8);
      byte[] value = readField(ch);
      if (key.startsWith("-")) {
        cache.remove(key.substring(1));
      } else {
        cache.put(key, value);
      }
    }
  }

  private byte[] readField(FileChannel ch) throws IOException {
    ByteBuffer len = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
    readFully(ch, len);
    int n = len.flip().getInt();
    if (n < 0 || position + n > ch.size()) {
      throw new IOException("corrupt FileStore record at offset " + position);
    }
    ByteBuffer data = ByteBuffer.allocate(n);
    readFully(ch, data);
    return data.array();
  }

  private void readFully(FileChannel ch, ByteBuffer buffer) throws IOException {
    while (buffer.hasRemaining()) {
      int r = ch.read(buffer, position);
      if (r < 0) {
        throw new IOException("truncated FileStore record at offset " + position);
      }
      position += r;
    }
  }

  private void append(FileChannel ch, String key, byte[] value) throws IOException {
    byte[] k = key.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + k.length + value.length).order(ByteOrder.LITTLE_ENDIAN);
    b.putInt(k.length).put(k).putInt(value.length).put(value).flip();
    long at = ch.size();
    while (b.hasRemaining()) {
      at += ch.write(b, at);
    }
  }

  @Override
  public void set(String key, byte[] value) {
    locked(
        true,
        ch -> {
          append(ch, "/" + key, value);
          return null;
        });
  }

  @Override
  public byte[] get(String key) {
    await(List.of(key));
    return locked(
        false,
        ch -> {
          refresh(ch);
          return cache.get("/" + key);
        });
  }

  @Override
  public long add(String key, long delta) {
    return locked(
        true,
        ch -> {
          refresh(ch);
          byte[] old = cache.get("/" + key);
          long value =
              delta
                  + (old == null || old.length == 0
                      ? 0
                      : Long.parseLong(new String(old, StandardCharsets.US_ASCII).strip()));
          append(ch, "/" + key, Long.toString(value).getBytes(StandardCharsets.US_ASCII));
          return value;
        });
  }

  @Override
  public byte[] compareSet(String key, byte[] expected, byte[] desired) {
    return locked(
        true,
        ch -> {
          refresh(ch);
          byte[] current = cache.get("/" + key);
          if ((current == null && expected.length == 0)
              || (current != null && Arrays.equals(current, expected))) {
            append(ch, "/" + key, desired);
            return desired;
          }
          return current == null ? expected : current;
        });
  }

  @Override
  public boolean check(List<String> keys) {
    return locked(
        false,
        ch -> {
          refresh(ch);
          for (String k : keys) {
            if (!cache.containsKey("/" + k)) {
              return false;
            }
          }
          return true;
        });
  }

  @Override
  public void await(List<String> keys, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!check(keys)) {
      if (System.nanoTime() - deadline > 0) {
        throw new StoreTimeoutException("Wait timeout for keys " + keys + " in FileStore " + path);
      }
      try {
        Thread.sleep(10);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new StoreException("interrupted while waiting for " + keys, e);
      }
    }
  }

  @Override
  public long numKeys() {
    return locked(
        false,
        ch -> {
          refresh(ch);
          return (long) cache.size();
        });
  }

  @Override
  public boolean deleteKey(String key) {
    return locked(
        true,
        ch -> {
          append(ch, "-/" + key, new byte[0]);
          return true;
        });
  }

  @Override
  public void append(String key, byte[] value) {
    locked(
        true,
        ch -> {
          refresh(ch);
          byte[] old = cache.getOrDefault("/" + key, new byte[0]);
          byte[] joined = Arrays.copyOf(old, old.length + value.length);
          System.arraycopy(value, 0, joined, old.length, value.length);
          append(ch, "/" + key, joined);
          return null;
        });
  }

  @Override
  public List<byte[]> multiGet(List<String> keys) {
    List<byte[]> out = new ArrayList<>();
    for (String k : keys) {
      out.add(get(k));
    }
    return out;
  }

  @Override
  public void multiSet(List<String> keys, List<byte[]> values) {
    for (int i = 0; i < keys.size(); i++) {
      set(keys.get(i), values.get(i));
    }
  }

  @Override
  public Duration timeout() {
    return timeout;
  }

  @Override
  public void setTimeout(Duration timeout) {
    this.timeout = timeout;
  }

  @Override
  public void close() {}

  @Override
  public String toString() {
    return "FileStore(" + path + ")";
  }
}
