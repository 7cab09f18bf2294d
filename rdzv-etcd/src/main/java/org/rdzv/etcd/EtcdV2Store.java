package org.rdzv.etcd;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.locks.LockSupport;
import org.rdzv.api.Store;
import org.rdzv.api.StoreException;
import org.rdzv.api.StoreTimeoutException;

/**
 * PyTorch's {@code EtcdStore} on etcd's v2 API, byte for byte: each key is stored as {@code prefix
 * + base64(key)} and each value as base64 text, without TTL; counters are base64 of decimal text.
 *
 * <p>Differences from PyTorch, both fixes of its bugs and invisible to PyTorch peers: waiting reads
 * each wanted key directly (PyTorch lists the prefix directory), so keys whose base64 form holds a
 * {@code /} can be read back, and a missing prefix directory means "not yet" rather than an
 * immediate failure. Waits use a recursive v2 watch on the prefix, never polling.
 */
final class EtcdV2Store implements Store {
  /** c10d's default store timeout, which PyTorch's EtcdStore inherits. */
  static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(300);

  private static final Base64.Encoder B64 = Base64.getEncoder();
  private static final Base64.Decoder B64D = Base64.getDecoder();

  private final EtcdV2Client client;
  private final String prefix;
  private volatile Duration timeout;

  EtcdV2Store(EtcdV2Client client, String prefix, Duration timeout) {
    this.client = Objects.requireNonNull(client, "client");
    this.prefix = prefix.endsWith("/") ? prefix : prefix + "/";
    this.timeout = timeout == null ? DEFAULT_TIMEOUT : timeout;
  }

  /** The etcd directory of this store, ending in {@code /}. */
  String prefix() {
    return prefix;
  }

  /** The etcd key that stores {@code key}: the prefix plus base64 of its UTF-8 bytes. */
  String path(String key) {
    return prefix + encode(key.getBytes(StandardCharsets.UTF_8));
  }

  static String encode(byte[] bytes) {
    return B64.encodeToString(bytes);
  }

  static byte[] decode(String text) {
    try {
      return B64D.decode(text == null ? "" : text);
    } catch (IllegalArgumentException e) {
      throw new StoreException("a value in the etcd store is not base64: " + text, e);
    }
  }

  @Override
  public void set(String key, byte[] value) {
    call(() -> client.put(path(key), EtcdV2Client.form("value", encode(value))));
  }

  @Override
  public byte[] get(String key) {
    String path = path(key);
    Map<String, String> found = waitFor(List.of(path), timeout);
    if (found == null) {
      throw new StoreTimeoutException("Key " + key + " not found in EtcdStore");
    }
    return decode(found.get(path));
  }

  @Override
  public long add(String key, long delta) {
    String path = path(key);
    return call(
        () -> {
          try {
            EtcdV2Client.Result created =
                client.put(
                    path, EtcdV2Client.form("value", encodeLong(delta), "prevExist", "false"));
            return decodeLong(created.node().value());
          } catch (EtcdV2Exception e) {
            if (!e.is(EtcdV2Exception.NODE_EXIST)) {
              throw e;
            }
          }
          for (int attempt = 0; ; attempt++) {
            EtcdV2Client.Node node = client.get(path, false).node();
            String next = encodeLong(decodeLong(node.value()) + delta);
            try {
              EtcdV2Client.Result written =
                  client.put(path, EtcdV2Client.form("value", next, "prevValue", node.value()));
              return decodeLong(written.node().value());
            } catch (EtcdV2Exception e) {
              if (!e.is(EtcdV2Exception.TEST_FAILED)) {
                throw e;
              }
              backOff(attempt);
            }
          }
        });
  }

  @Override
  public byte[] compareSet(String key, byte[] expected, byte[] desired) {
    String path = path(key);
    return call(
        () -> {
          for (int attempt = 0; ; attempt++) {
            Optional<EtcdV2Client.Node> current = read(path);
            try {
              if (current.isEmpty()) {
                if (expected.length != 0) {
                  return expected;
                }
                client.put(path, EtcdV2Client.form("value", encode(desired), "prevExist", "false"));
                return desired;
              }
              byte[] value = decode(current.get().value());
              if (!java.util.Arrays.equals(value, expected)) {
                return value;
              }
              client.put(
                  path,
                  EtcdV2Client.form(
                      "value", encode(desired),
                      "prevIndex", Long.toString(current.get().modifiedIndex())));
              return desired;
            } catch (EtcdV2Exception e) {
              if (!e.compareFailed()) {
                throw e;
              }
              backOff(attempt);
            }
          }
        });
  }

  @Override
  public boolean check(List<String> keys) {
    List<String> paths = keys.stream().map(this::path).toList();
    return call(() -> missing(paths, new HashMap<>()) < 0);
  }

  @Override
  public void await(List<String> keys, Duration timeout) {
    if (waitFor(keys.stream().map(this::path).toList(), timeout) == null) {
      throw new StoreTimeoutException("Timeout while waiting for keys in EtcdStore");
    }
  }

  @Override
  public long numKeys() {
    return call(
        () -> {
          try {
            return client.get(prefix, false).node().nodes().stream().filter(n -> !n.dir()).count();
          } catch (EtcdV2Exception e) {
            if (e.keyNotFound()) {
              return 0L;
            }
            throw e;
          }
        });
  }

  @Override
  public boolean deleteKey(String key) {
    return call(
        () -> {
          try {
            client.delete(path(key), Map.of());
            return true;
          } catch (EtcdV2Exception e) {
            if (e.keyNotFound()) {
              return false;
            }
            throw e;
          }
        });
  }

  @Override
  public void append(String key, byte[] value) {
    String path = path(key);
    call(
        () -> {
          for (int attempt = 0; ; attempt++) {
            Optional<EtcdV2Client.Node> current = read(path);
            try {
              if (current.isEmpty()) {
                client.put(path, EtcdV2Client.form("value", encode(value), "prevExist", "false"));
              } else {
                byte[] old = decode(current.get().value());
                byte[] joined = java.util.Arrays.copyOf(old, old.length + value.length);
                System.arraycopy(value, 0, joined, old.length, value.length);
                client.put(
                    path,
                    EtcdV2Client.form(
                        "value", encode(joined),
                        "prevIndex", Long.toString(current.get().modifiedIndex())));
              }
              return null;
            } catch (EtcdV2Exception e) {
              if (!e.compareFailed()) {
                throw e;
              }
              backOff(attempt);
            }
          }
        });
  }

  @Override
  public List<byte[]> multiGet(List<String> keys) {
    List<String> paths = keys.stream().map(this::path).toList();
    Map<String, String> found = waitFor(paths, timeout);
    if (found == null) {
      throw new StoreTimeoutException("Timeout while waiting for keys in EtcdStore");
    }
    List<byte[]> values = new ArrayList<>(paths.size());
    for (String path : paths) {
      values.add(decode(found.get(path)));
    }
    return values;
  }

  @Override
  public void multiSet(List<String> keys, List<byte[]> values) {
    if (keys.size() != values.size()) {
      throw new IllegalArgumentException(
          "multiSet needs as many values (" + values.size() + ") as keys (" + keys.size() + ")");
    }
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
    this.timeout = Objects.requireNonNull(timeout, "timeout");
  }

  /** The client belongs to whoever created this store (a handler), which closes it. */
  @Override
  public void close() {}

  /**
   * Waits until every path exists and returns their raw (base64) values, or {@code null} when
   * {@code timeout} passes first. Reads the missing keys, then watches the prefix from the index of
   * the first read, so no write in between is missed.
   */
  private Map<String, String> waitFor(List<String> paths, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    Map<String, String> found = new HashMap<>();
    return call(
        () -> {
          while (true) {
            long index = missing(paths, found);
            if (index < 0) {
              return found;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
              return null;
            }
            try {
              client.watch(prefix, index + 1, true, Duration.ofNanos(left));
            } catch (EtcdV2Exception e) {
              if (!e.is(EtcdV2Exception.EVENT_INDEX_CLEARED)) {
                throw e;
              }
            }
          }
        });
  }

  /**
   * Reads the paths not yet in {@code found} and adds those that exist; returns -1 when all are
   * there, else the etcd index of the first read (a watch from the next index sees every later
   * write).
   */
  private long missing(List<String> paths, Map<String, String> found) {
    long firstIndex = -1;
    boolean allThere = true;
    for (String path : paths) {
      if (found.containsKey(path)) {
        continue;
      }
      try {
        EtcdV2Client.Result result = client.get(path, false);
        if (firstIndex < 0) {
          firstIndex = result.etcdIndex();
        }
        if (result.node().dir()) {
          allThere = false;
        } else {
          found.put(path, result.node().value());
        }
      } catch (EtcdV2Exception e) {
        if (!e.keyNotFound()) {
          throw e;
        }
        if (firstIndex < 0) {
          firstIndex = e.etcdIndex();
        }
        allThere = false;
      }
    }
    return allThere ? -1 : Math.max(firstIndex, 0);
  }

  private Optional<EtcdV2Client.Node> read(String path) {
    try {
      return Optional.of(client.get(path, false).node());
    } catch (EtcdV2Exception e) {
      if (e.keyNotFound()) {
        return Optional.empty();
      }
      throw e;
    }
  }

  private static String encodeLong(long value) {
    return encode(Long.toString(value).getBytes(StandardCharsets.US_ASCII));
  }

  private static long decodeLong(String base64) {
    String text = new String(decode(base64), StandardCharsets.UTF_8).strip();
    try {
      return Long.parseLong(text);
    } catch (NumberFormatException e) {
      throw new StoreException("the counter in the etcd store is not a number: " + text, e);
    }
  }

  /** A short random pause after a lost compare-and-set, growing with the attempts (max 100 ms). */
  static void backOff(int attempt) {
    long capMillis = Math.min(100, 1L << Math.min(attempt, 7));
    LockSupport.parkNanos(ThreadLocalRandom.current().nextLong(capMillis * 1_000_000L + 1));
    if (Thread.currentThread().isInterrupted()) {
      throw new StoreException("interrupted while retrying a compare-and-set in etcd");
    }
  }

  private interface Call<T> {
    T run();
  }

  private <T> T call(Call<T> call) {
    try {
      return call.run();
    } catch (EtcdV2Exception e) {
      throw new StoreException(e.getMessage(), e);
    }
  }
}
