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
 *
 * <p>Bounds: CHECK, WAIT and MULTI_GET are executed one key at a time ({@link #begin}, {@link
 * #element}, {@link #end}) as their keys arrive, and MULTI_SET's pairs are held (charged to the
 * budget) and put together at its end, so that one cut short changes nothing; a reply that would
 * exceed the value limit (a MULTI_GET or LIST of too much) is refused like an oversized value;
 * stored data is charged to a {@link Budget} and a write past it is refused; waits a client
 * cancelled or left behind are unlinked in slices by {@link #runBackgroundWork}, so that no single
 * request or disconnect holds the event loop for long.
 */
final class StoreState {
  private static final byte[] EMPTY = new byte[0];

  /** Watch event types of the 1.13 callback connection. */
  static final byte KEY_UPDATED = 0;

  static final byte KEY_CREATED = 1;
  static final byte KEY_DELETED = 2;

  /**
   * Approximate heap bytes of one entry beyond its key and value bytes (hash node, key string, two
   * array headers, table slot), so that a million one-byte keys count as what they cost.
   */
  static final long ENTRY_OVERHEAD = 112;

  /** Heap bytes of one queued element beyond its bytes, and of a queue beyond its key. */
  static final long QUEUE_ELEMENT_OVERHEAD = 40;

  static final long QUEUE_OVERHEAD = 160;

  /** Heap bytes of one wait registration beyond its key's bytes (map node, key string, slots). */
  static final long REGISTRATION_COST = 96;

  /** Heap bytes of one watch registration beyond its key's bytes. */
  static final long WATCH_COST = 120;

  /** Registrations unregistered at once; more are left to {@link #runBackgroundWork}. */
  static final int SLICE = 4096;

  /** Memory that stored data may take; {@link #UNLIMITED} for tests without a server. */
  interface Budget {
    /** Takes {@code bytes}; false (and nothing taken) if they do not fit. */
    boolean tryCharge(long bytes);

    void release(long bytes);

    /** The one-line reason a charge failed, for the connection that is refused. */
    String exhausted(long bytes);

    Budget UNLIMITED =
        new Budget() {
          @Override
          public boolean tryCharge(long bytes) {
            return true;
          }

          @Override
          public void release(long bytes) {}

          @Override
          public String exhausted(long bytes) {
            return "";
          }
        };
  }

  /**
   * A pending WAIT: the number of its keys still missing, and the keys it registered on (so that
   * cancelling it can find them). One object per WAIT, however many keys: a key's registration is
   * the waiter itself in {@link #waiting}, or an entry of a {@link WaiterList} when several wait on
   * it, so that 100,000 parked keys are 100,000 map entries and nothing more for the collector.
   */
  static final class Waiter {
    final Session session;
    int missing;

    /** Whether its keys are still arriving (it cannot be answered before they all have). */
    boolean open = true;

    boolean cancelled;

    /** The keys it registered on, and how far clean-up has unregistered them once cancelled. */
    String[] keys = Request.NO_KEYS;

    int keyCount;
    int cleaned;

    /** The memory charged to its session for its registrations. */
    long charged;

    /** In the session's list of pending waits. */
    Waiter previous;

    Waiter next;

    Waiter(Session session) {
      this.session = session;
    }

    void addKey(String key) {
      if (keyCount == keys.length) {
        keys = Arrays.copyOf(keys, Math.max(4, keyCount + (keyCount >> 1)));
      }
      keys[keyCount++] = key;
    }
  }

  /**
   * The waiters on one key, in arrival order, from {@code head}. Cancelled waiters are dropped
   * lazily: counted as {@code dead} and removed all at once when they are half of the list.
   */
  static final class WaiterList {
    Waiter[] items;
    int head;
    int size;
    int dead;

    WaiterList(Waiter first, Waiter second) {
      items = new Waiter[] {first, second, null, null};
      size = 2;
    }

    void add(Waiter w) {
      if (size == items.length) {
        if (head > 0) {
          System.arraycopy(items, head, items, 0, size - head);
          Arrays.fill(items, size - head, size, null);
          size -= head;
          head = 0;
        }
        if (size == items.length) {
          items = Arrays.copyOf(items, size * 2);
        }
      }
      items[size++] = w;
    }

    int live() {
      return size - head - dead;
    }

    /** Removes cancelled waiters. */
    void compact() {
      int n = 0;
      for (int i = head; i < size; i++) {
        if (!items[i].cancelled) {
          items[n++] = items[i];
        }
      }
      Arrays.fill(items, n, size, null);
      head = 0;
      size = n;
      dead = 0;
    }
  }

  private final Limits limits;
  private final Budget budget;
  private final HashMap<String, byte[]> data = new HashMap<>();
  private final HashMap<String, ArrayDeque<byte[]>> queues = new HashMap<>();

  /** Per key: the {@link Waiter} waiting on it, or a {@link WaiterList} of several. */
  private HashMap<String, Object> waiting = new HashMap<>();

  private final HashMap<String, ArrayList<Session>> watchers = new HashMap<>();

  /** Cancelled waiters whose keys are still registered, for {@link #runBackgroundWork}. */
  private final ArrayDeque<Waiter> cleanup = new ArrayDeque<>();

  private int pendingWaits;
  private int waitingPeak;
  private long keyBytes;
  private long dataBytes;

  StoreState() {
    this(Limits.LIBUV, Budget.UNLIMITED);
  }

  StoreState(Limits limits, Budget budget) {
    this.limits = limits;
    this.budget = budget;
  }

  int numKeys() {
    return data.size();
  }

  /** WAIT requests registered and not yet answered or cancelled. */
  int pendingWaits() {
    return pendingWaits;
  }

  /** The bytes of stored data (keys, values, queues) as charged to the budget. */
  long dataBytes() {
    return dataBytes;
  }

  /** Executes one whole request from {@code session}; a ProtocolException means: close it. */
  void execute(Session session, Request r) throws ProtocolException {
    OutputQueue out = session.out;
    switch (r.command()) {
      case SET -> put(r.key(), r.value());
      case GET -> {
        byte[] value = data.get(r.key());
        if (value == null) {
          if (session.family == Family.V1) {
            throw new ProtocolException(
                ProtocolException.Reason.MISSING_KEY, "GET of a missing key " + printable(r.key()));
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
      case CHECK, WAIT, MULTI_GET, MULTI_SET -> {
        begin(session, r.command());
        for (int i = 0; i < r.keys().length; i++) {
          element(session, r.keys()[i], r.command() == Command.MULTI_SET ? r.values()[i] : null);
        }
        end(session);
      }
      case GETNUMKEYS -> {
        out.putLong(data.size());
        session.outputQueued();
      }
      case DELETE_KEY -> {
        byte[] old = data.remove(r.key());
        if (old != null) {
          removed(r.key(), old);
        }
        out.putLong(old == null ? 0 : 1);
        session.outputQueued();
        if (old != null) {
          notifyWatchers(KEY_DELETED, r.key(), old, EMPTY);
        }
      }
      case WATCH_KEY -> {
        if (session.watchedKeys.add(r.key())) {
          watchers.computeIfAbsent(r.key(), k -> new ArrayList<>(2)).add(session);
          session.charge(WATCH_COST + r.key().length());
        }
        out.putByte(Wire.KEY_CALLBACK_REGISTERED);
        session.outputQueued();
      }
      case APPEND -> {
        byte[] old = data.get(r.key());
        byte[] value = r.value();
        if (old != null) {
          long length = (long) old.length + value.length;
          if (length > limits.maxValueLength()) {
            throw new ProtocolException(
                ProtocolException.Reason.VALUE_LENGTH,
                "value length "
                    + length
                    + " exceeds the limit of "
                    + limits.maxValueLength()
                    + " bytes (APPEND to "
                    + printable(r.key())
                    + ")");
          }
          value = Arrays.copyOf(old, (int) length);
          System.arraycopy(r.value(), 0, value, old.length, r.value().length);
        }
        put(r.key(), value);
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
        ArrayDeque<byte[]> queue = queues.get(r.key());
        long cost = QUEUE_ELEMENT_OVERHEAD + r.value().length;
        if (queue == null) {
          cost += QUEUE_OVERHEAD + r.key().length();
        }
        charge(cost);
        if (queue == null) {
          queue = new ArrayDeque<>();
          queues.put(r.key(), queue);
        }
        queue.addLast(r.value());
        wakeOne(r.key());
      }
      case QUEUE_POP -> {
        ArrayDeque<byte[]> queue = queues.get(r.key());
        int length = queue == null ? 0 : queue.size();
        out.putLong(length);
        if (length > 0) {
          byte[] value = queue.pollFirst();
          long cost = QUEUE_ELEMENT_OVERHEAD + value.length;
          out.putBytes(value);
          if (queue.isEmpty()) {
            queues.remove(r.key());
            cost += QUEUE_OVERHEAD + r.key().length();
          }
          uncharge(cost);
        }
        session.outputQueued();
      }
      case QUEUE_LEN -> {
        ArrayDeque<byte[]> queue = queues.get(r.key());
        out.putLong(queue == null ? 0 : queue.size());
        session.outputQueued();
      }
      case LIST -> {
        long length = 8 + 8L * data.size() + keyBytes;
        if (length > limits.maxValueLength()) {
          throw new ProtocolException(
              ProtocolException.Reason.REPLY_LENGTH,
              "value length "
                  + length
                  + " exceeds the limit of "
                  + limits.maxValueLength()
                  + " bytes (the reply to LIST of "
                  + data.size()
                  + " keys)");
        }
        out.putLong(data.size());
        for (String key : data.keySet()) {
          out.putKey(key);
        }
        session.outputQueued();
      }
      case VALIDATE ->
          throw new ProtocolException(ProtocolException.Reason.HANDSHAKE, "unexpected VALIDATE");
    }
  }

  /**
   * An upper bound of the reply bytes {@code r} queues (the server checks it against the
   * connection's limits before executing {@code r}).
   */
  long replyBytes(Request r) {
    return switch (r.command()) {
      case GET -> 8 + valueLength(r.key());
      case COMPARE_SET ->
          8 + Math.max(valueLength(r.key()), Math.max(r.values()[0].length, r.values()[1].length));
      case QUEUE_POP -> {
        ArrayDeque<byte[]> queue = queues.get(r.key());
        yield 16 + (queue == null || queue.isEmpty() ? 0 : queue.peekFirst().length);
      }
      case LIST -> 8 + 8L * data.size() + keyBytes;
      default -> 16;
    };
  }

  /** The memory one element of the multi-key request in progress will take (reply, waiter). */
  long elementBytes(Session session, String key) {
    if (session.multi == Command.MULTI_GET) {
      return 8 + valueLength(key);
    }
    if (session.multi == Command.WAIT) {
      return present(key) ? 0 : REGISTRATION_COST + key.length();
    }
    return 0;
  }

  private int valueLength(String key) {
    byte[] value = data.get(key);
    return value == null ? 0 : value.length;
  }

  // ---------------------------------------------------------------- multi-key, one key at a time

  /** A CHECK, WAIT, MULTI_GET or MULTI_SET from {@code session} begins. */
  void begin(Session session, Command command) {
    session.multi = command;
    session.multiAllPresent = true;
    session.multiReplyBytes = 0;
    session.multiWaiter = null;
  }

  /** One key (and for MULTI_SET its value) of the request {@code session} began. */
  void element(Session session, String key, byte[] value) throws ProtocolException {
    switch (session.multi) {
      case CHECK -> {
        if (session.multiAllPresent && !present(key)) {
          session.multiAllPresent = false;
        }
      }
      case WAIT -> {
        if (!present(key)) {
          Waiter w = session.multiWaiter;
          if (w == null) {
            w = new Waiter(session);
            session.multiWaiter = w;
            link(session, w);
          }
          register(w, key);
        }
      }
      case MULTI_GET -> {
        byte[] v = data.get(key);
        if (v == null) {
          v = EMPTY;
        }
        session.multiReplyBytes += 8 + v.length;
        if (session.multiReplyBytes > limits.maxValueLength()) {
          throw new ProtocolException(
              ProtocolException.Reason.REPLY_LENGTH,
              "value length "
                  + session.multiReplyBytes
                  + " exceeds the limit of "
                  + limits.maxValueLength()
                  + " bytes (the reply to MULTI_GET, at key "
                  + printable(key)
                  + ")");
        }
        session.out.putBytes(v);
        session.outputQueued();
      }
      case MULTI_SET -> {
        long bytes = ENTRY_OVERHEAD + key.length() + value.length;
        charge(bytes);
        session.pendingBytes += bytes;
        session.pendingKeys.add(key);
        session.pendingValues.add(value);
      }
      default -> throw new IllegalStateException("no multi-key request in progress");
    }
  }

  /** The request {@code session} began has had all its keys. */
  void end(Session session) {
    Command command = session.multi;
    session.multi = null;
    switch (command) {
      case CHECK -> {
        session.out.putByte(session.multiAllPresent ? Wire.READY : Wire.NOT_READY);
        session.outputQueued();
      }
      case WAIT -> {
        Waiter w = session.multiWaiter;
        session.multiWaiter = null;
        if (w == null) {
          session.out.putByte(Wire.STOP_WAITING);
          session.outputQueued();
        } else {
          w.open = false;
          if (w.missing == 0) {
            complete(w);
          }
        }
      }
      case MULTI_GET -> session.outputQueued();
      case MULTI_SET -> applyPending(session);
      default -> {}
    }
  }

  /**
   * Puts a finished MULTI_SET's pairs in order. The charge held for them is given back first and
   * each put takes at most what its pair held, so none is refused.
   */
  private void applyPending(Session session) {
    List<String> keys = List.copyOf(session.pendingKeys);
    List<byte[]> values = List.copyOf(session.pendingValues);
    discardPending(session);
    try {
      for (int i = 0; i < keys.size(); i++) {
        put(keys.get(i), values.get(i));
      }
    } catch (ProtocolException e) {
      throw new IllegalStateException("a MULTI_SET put was refused after its budget was held", e);
    }
  }

  /** Drops the pairs of a MULTI_SET in progress and gives back what they held. */
  private void discardPending(Session session) {
    uncharge(session.pendingBytes);
    session.pendingBytes = 0;
    session.pendingKeys.clear();
    session.pendingValues.clear();
  }

  // ---------------------------------------------------------------- data

  /** A key counts as present when it has a value or a non-empty queue (as in libuv). */
  private boolean present(String key) {
    if (data.containsKey(key)) {
      return true;
    }
    ArrayDeque<byte[]> queue = queues.get(key);
    return queue != null && !queue.isEmpty();
  }

  private void charge(long bytes) throws ProtocolException {
    if (!budget.tryCharge(bytes)) {
      throw new ProtocolException(ProtocolException.Reason.MEMORY, budget.exhausted(bytes));
    }
    dataBytes += bytes;
  }

  private void uncharge(long bytes) {
    budget.release(bytes);
    dataBytes -= bytes;
  }

  private void removed(String key, byte[] old) {
    keyBytes -= key.length();
    uncharge(ENTRY_OVERHEAD + key.length() + old.length);
  }

  /** Stores a value, notifies 1.13 watchers and wakes waiters on the key. */
  private void put(String key, byte[] value) throws ProtocolException {
    byte[] old = data.put(key, value);
    long delta =
        old == null ? ENTRY_OVERHEAD + key.length() + value.length : value.length - old.length;
    if (delta > 0) {
      if (!budget.tryCharge(delta)) {
        if (old == null) {
          data.remove(key);
        } else {
          data.put(key, old);
        }
        throw new ProtocolException(ProtocolException.Reason.MEMORY, budget.exhausted(delta));
      }
      dataBytes += delta;
    } else if (delta < 0) {
      uncharge(-delta);
    }
    if (old == null) {
      keyBytes += key.length();
    }
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

  private byte[] compareSet(String key, byte[] expected, byte[] desired) throws ProtocolException {
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

  // ---------------------------------------------------------------- waits

  private void link(Session session, Waiter w) {
    w.next = session.firstWaiter;
    if (w.next != null) {
      w.next.previous = w;
    }
    session.firstWaiter = w;
    pendingWaits++;
  }

  private void unlinkFromSession(Waiter w) {
    Session s = w.session;
    if (w.previous != null) {
      w.previous.next = w.next;
    } else if (s.firstWaiter == w) {
      s.firstWaiter = w.next;
    }
    if (w.next != null) {
      w.next.previous = w.previous;
    }
    w.previous = null;
    w.next = null;
    pendingWaits--;
  }

  private void register(Waiter w, String key) {
    Object v = waiting.putIfAbsent(key, w);
    if (v == w) {
      return; // the same key twice in one WAIT: one registration, released by one SET
    }
    if (v != null) {
      if (v instanceof WaiterList list) {
        list.add(w);
      } else {
        waiting.put(key, new WaiterList((Waiter) v, w));
      }
    } else if (waiting.size() > waitingPeak) {
      waitingPeak = waiting.size();
    }
    w.addKey(key);
    w.missing++;
    long cost = REGISTRATION_COST + key.length();
    w.charged += cost;
    w.session.charge(cost);
  }

  /** Gives back the table of a map that held many keys once it is empty again. */
  private void shrinkWaiting() {
    if (waiting.isEmpty() && waitingPeak > 1024) {
      waiting = new HashMap<>();
      waitingPeak = 0;
    }
  }

  /** Every registration on {@code key} has its key now. */
  private void wakeAll(String key) {
    if (waiting.isEmpty()) {
      return;
    }
    Object v = waiting.remove(key);
    if (v == null) {
      return;
    }
    if (v instanceof WaiterList list) {
      for (int i = list.head; i < list.size; i++) {
        released(list.items[i]);
      }
    } else {
      released((Waiter) v);
    }
    shrinkWaiting();
  }

  /** The first live waiter on {@code key} has its key now (QUEUE_PUSH). */
  private void wakeOne(String key) {
    Object v = waiting.get(key);
    if (v == null) {
      return;
    }
    if (v instanceof WaiterList list) {
      while (list.head < list.size) {
        Waiter w = list.items[list.head];
        list.items[list.head++] = null;
        if (!w.cancelled) {
          if (list.head == list.size) {
            waiting.remove(key);
          }
          released(w);
          return;
        }
        list.dead = Math.max(0, list.dead - 1);
      }
      waiting.remove(key);
    } else {
      waiting.remove(key);
      released((Waiter) v);
    }
  }

  private void released(Waiter w) {
    if (w.cancelled) {
      return;
    }
    if (--w.missing == 0 && !w.open) {
      complete(w);
    }
  }

  private void complete(Waiter w) {
    unlinkFromSession(w);
    w.session.release(w.charged);
    w.charged = 0;
    w.keys = Request.NO_KEYS;
    w.session.out.putByte(Wire.STOP_WAITING);
    w.session.outputQueued();
  }

  /** Drops every pending wait of {@code session} (CANCEL_WAIT, disconnect). */
  void cancelWaits(Session session) {
    session.multiWaiter = null;
    Waiter w = session.firstWaiter;
    while (w != null) {
      Waiter next = w.next;
      w.cancelled = true;
      unlinkFromSession(w);
      cleanup.add(w);
      w = next;
    }
    // A slice at once: an ordinary client's few registrations go now, a huge wait's later.
    runBackgroundWork(SLICE);
  }

  /**
   * Unregisters up to about {@code units} keys of cancelled waits; returns whether work is left.
   * The server calls it once per turn of its event loop.
   */
  boolean runBackgroundWork(int units) {
    while (units > 0 && !cleanup.isEmpty()) {
      Waiter w = cleanup.peekFirst();
      while (w.cleaned < w.keyCount && units > 0) {
        unregister(w, w.keys[w.cleaned]);
        w.keys[w.cleaned++] = null;
        units--;
      }
      if (w.cleaned == w.keyCount) {
        cleanup.pollFirst();
        w.session.release(w.charged);
        w.charged = 0;
        w.keys = Request.NO_KEYS;
      }
    }
    return !cleanup.isEmpty();
  }

  /** Takes the cancelled {@code w} off {@code key} (if a SET did not already). */
  private void unregister(Waiter w, String key) {
    Object v = waiting.get(key);
    if (v == w) {
      waiting.remove(key);
      shrinkWaiting();
    } else if (v instanceof WaiterList list) {
      list.dead++;
      if (list.dead * 2 > list.size - list.head) {
        list.compact();
        if (list.size == 0) {
          waiting.remove(key);
          shrinkWaiting();
        }
      }
    }
  }

  /** Whether {@link #runBackgroundWork} has work left. */
  boolean hasBackgroundWork() {
    return !cleanup.isEmpty();
  }

  /** Drops everything (the server failed and is gone): gives the memory back at once. */
  void discard() {
    data.clear();
    queues.clear();
    waiting = new HashMap<>();
    watchers.clear();
    cleanup.clear();
    pendingWaits = 0;
  }

  /** Forgets a session that disconnected: its waits and its watches. The data stays. */
  void disconnected(Session session) {
    cancelWaits(session);
    session.multi = null;
    discardPending(session);
    for (String key : session.watchedKeys) {
      List<Session> list = watchers.get(key);
      if (list != null) {
        list.remove(session);
        if (list.isEmpty()) {
          watchers.remove(key);
        }
      }
      session.release(WATCH_COST + key.length());
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
