package org.rdzv.store;

import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;

/**
 * The data, queues, waits and watches of one store, and the semantics of every command. Pure logic
 * with no I/O and no locking: the server's single event-loop thread owns it.
 *
 * <p>Where PyTorch's servers disagree (see docs/tcpstore.md) this implementation: answers a GET or
 * MULTI_GET of a missing key with an empty value on 2.x and closes the connection on 1.13; wakes
 * waiters when COMPARE_SET creates a key; keeps a 1.13 connection's wait registrations until it
 * disconnects (as 1.13 does); removes watch registrations on disconnect (1.13 does not).
 */
final class StoreState {
  private static final byte[] EMPTY = new byte[0];

  /** Watch event types of the 1.13 callback connection. */
  static final byte KEY_UPDATED = 0;

  static final byte KEY_CREATED = 1;
  static final byte KEY_DELETED = 2;

  private final HashMap<String, byte[]> data = new HashMap<>();
  private final HashMap<String, ArrayDeque<byte[]>> queues = new HashMap<>();
  private final HashMap<String, ArrayList<Session.Waiter>> waiting = new HashMap<>();
  private final HashMap<String, ArrayList<Session>> watchers = new HashMap<>();

  private int pendingWaits;

  int numKeys() {
    return data.size();
  }

  /** WAIT requests registered and not yet answered or cancelled. */
  int pendingWaits() {
    return pendingWaits;
  }

  /** Executes one request from {@code session}; a ProtocolException means: close it. */
  void execute(Session session, Request r) throws ProtocolException {
    OutputQueue out = session.out;
    switch (r.command()) {
      case SET -> set(r.key(), r.value());
      case GET -> {
        byte[] value = data.get(r.key());
        if (value == null) {
          if (session.family == Family.V1) {
            throw new ProtocolException("GET of a missing key " + printable(r.key()));
          }
          value = EMPTY;
        }
        out.putBytes(value);
        session.outputQueued();
      }
      case ADD -> {
        out.putLong(add(r.key(), r.number()));
        session.outputQueued();
      }
      case COMPARE_SET -> {
        out.putBytes(compareSet(r.key(), r.values()[0], r.values()[1]));
        session.outputQueued();
      }
      case CHECK -> {
        boolean all = true;
        for (String key : r.keys()) {
          if (!present(key)) {
            all = false;
            break;
          }
        }
        out.putByte(all ? Wire.READY : Wire.NOT_READY);
        session.outputQueued();
      }
      case WAIT -> await(session, r.keys());
      case GETNUMKEYS -> {
        out.putLong(data.size());
        session.outputQueued();
      }
      case DELETE_KEY -> {
        byte[] old = data.remove(r.key());
        out.putLong(old == null ? 0 : 1);
        session.outputQueued();
        if (old != null) {
          notifyWatchers(KEY_DELETED, r.key(), old, EMPTY);
        }
      }
      case WATCH_KEY -> {
        if (session.watchedKeys.add(r.key())) {
          watchers.computeIfAbsent(r.key(), k -> new ArrayList<>(2)).add(session);
        }
        out.putByte(Wire.KEY_CALLBACK_REGISTERED);
        session.outputQueued();
      }
      case APPEND -> {
        byte[] old = data.get(r.key());
        byte[] value = r.value();
        if (old != null) {
          value = Arrays.copyOf(old, old.length + value.length);
          System.arraycopy(r.value(), 0, value, old.length, r.value().length);
        }
        put(r.key(), value);
      }
      case MULTI_GET -> {
        for (String key : r.keys()) {
          byte[] value = data.get(key);
          out.putBytes(value == null ? EMPTY : value);
        }
        session.outputQueued();
      }
      case MULTI_SET -> {
        for (int i = 0; i < r.keys().length; i++) {
          set(r.keys()[i], r.values()[i]);
        }
      }
      case CANCEL_WAIT -> {
        cancelWaits(session);
        out.putByte(Wire.WAIT_CANCELED);
        session.outputQueued();
      }
      case PING -> {
        out.putInt((int) r.number());
        session.outputQueued();
      }
      case QUEUE_PUSH -> {
        queues.computeIfAbsent(r.key(), k -> new ArrayDeque<>()).addLast(r.value());
        wakeOne(r.key());
      }
      case QUEUE_POP -> {
        ArrayDeque<byte[]> queue = queues.get(r.key());
        int length = queue == null ? 0 : queue.size();
        out.putLong(length);
        if (length > 0) {
          out.putBytes(queue.pollFirst());
          if (queue.isEmpty()) {
            queues.remove(r.key());
          }
        }
        session.outputQueued();
      }
      case QUEUE_LEN -> {
        ArrayDeque<byte[]> queue = queues.get(r.key());
        out.putLong(queue == null ? 0 : queue.size());
        session.outputQueued();
      }
      case LIST -> {
        out.putLong(data.size());
        for (String key : data.keySet()) {
          out.putKey(key);
        }
        session.outputQueued();
      }
      case VALIDATE -> throw new ProtocolException("unexpected VALIDATE");
    }
  }

  /** A key counts as present when it has a value or a non-empty queue (as in libuv). */
  private boolean present(String key) {
    if (data.containsKey(key)) {
      return true;
    }
    ArrayDeque<byte[]> queue = queues.get(key);
    return queue != null && !queue.isEmpty();
  }

  private void set(String key, byte[] value) {
    put(key, value);
  }

  /** Stores a value, notifies 1.13 watchers and wakes waiters on the key. */
  private void put(String key, byte[] value) {
    byte[] old = data.put(key, value);
    if (!watchers.isEmpty()) {
      notifyWatchers(
          old == null ? KEY_CREATED : KEY_UPDATED, key, old == null ? EMPTY : old, value);
    }
    wakeAll(key);
  }

  private long add(String key, long delta) throws ProtocolException {
    byte[] old = data.get(key);
    long value = delta;
    if (old != null) {
      value = Stoll.parse(old) + delta;
    }
    put(key, Long.toString(value).getBytes(StandardCharsets.US_ASCII));
    return value;
  }

  private byte[] compareSet(String key, byte[] expected, byte[] desired) {
    byte[] current = data.get(key);
    if (current == null) {
      if (expected.length == 0) {
        put(key, desired);
        return desired;
      }
      return expected;
    }
    if (Arrays.equals(current, expected)) {
      put(key, desired);
      return desired;
    }
    return current;
  }

  private void await(Session session, String[] keys) {
    Session.Waiter waiter = null;
    for (String key : keys) {
      if (!present(key)) {
        if (waiter == null) {
          waiter = new Session.Waiter(session);
        }
        waiter.missing++;
        waiter.keys.add(key);
        waiting.computeIfAbsent(key, k -> new ArrayList<>(2)).add(waiter);
      }
    }
    if (waiter == null) {
      session.out.putByte(Wire.STOP_WAITING);
      session.outputQueued();
    } else {
      session.waiters.add(waiter);
      pendingWaits++;
    }
  }

  private void wakeAll(String key) {
    if (waiting.isEmpty()) {
      return;
    }
    ArrayList<Session.Waiter> list = waiting.remove(key);
    if (list == null) {
      return;
    }
    for (Session.Waiter w : list) {
      release(w);
    }
  }

  private void wakeOne(String key) {
    ArrayList<Session.Waiter> list = waiting.get(key);
    if (list == null) {
      return;
    }
    Session.Waiter w = list.remove(0);
    if (list.isEmpty()) {
      waiting.remove(key);
    }
    release(w);
  }

  private void release(Session.Waiter w) {
    if (--w.missing == 0) {
      w.session.waiters.remove(w);
      pendingWaits--;
      w.session.out.putByte(Wire.STOP_WAITING);
      w.session.outputQueued();
    }
  }

  /** Drops every pending wait of {@code session} (CANCEL_WAIT, disconnect). */
  void cancelWaits(Session session) {
    for (Session.Waiter w : session.waiters) {
      for (String key : w.keys) {
        ArrayList<Session.Waiter> list = waiting.get(key);
        if (list != null) {
          list.remove(w);
          if (list.isEmpty()) {
            waiting.remove(key);
          }
        }
      }
    }
    pendingWaits -= session.waiters.size();
    session.waiters.clear();
  }

  /** Forgets a session that disconnected: its waits and its watches. The data stays. */
  void disconnected(Session session) {
    cancelWaits(session);
    for (String key : session.watchedKeys) {
      List<Session> list = watchers.get(key);
      if (list != null) {
        list.remove(session);
        if (list.isEmpty()) {
          watchers.remove(key);
        }
      }
    }
    session.watchedKeys.clear();
  }

  private void notifyWatchers(byte type, String key, byte[] old, byte[] value) {
    List<Session> list = watchers.get(key);
    if (list == null) {
      return;
    }
    for (Session s : list) {
      s.out.putByte(type);
      s.out.putKey(key);
      s.out.putBytes(old);
      s.out.putBytes(value);
      s.outputQueued();
    }
  }

  static String printable(String rawKey) {
    byte[] bytes = Request.keyBytes(rawKey);
    String s = new String(bytes, StandardCharsets.UTF_8);
    return s.length() > 80 ? "'" + s.substring(0, 80) + "...'" : "'" + s + "'";
  }
}
