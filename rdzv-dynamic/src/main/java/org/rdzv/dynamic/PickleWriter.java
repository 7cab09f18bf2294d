package org.rdzv.dynamic;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.time.LocalDateTime;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Writes the values of {@link Py} as a protocol-4 pickle that every CPython from 3.4 on reads.
 *
 * <p>It memoizes strings, class references and objects (by identity), as CPython does, so a state
 * that refers to the same node descriptor twice stays compact; it writes no FRAME (framing is only
 * a read-ahead hint). Batches of SETITEMS/ADDITEMS hold at most 1000 entries, like CPython's.
 */
final class PickleWriter {
  private static final int BATCH = 1000;
  private static final Py.Global DATETIME = Py.Global.of("datetime", "datetime");
  private static final Py.Global TIMEZONE = Py.Global.of("datetime", "timezone");
  private static final Py.Global TIMEDELTA = Py.Global.of("datetime", "timedelta");
  private static final int MAX_DEPTH = 200;

  private final Buffer out = new Buffer();
  private final Map<String, Integer> strings = new HashMap<>();
  private final Map<Object, Integer> objects = new IdentityHashMap<>();
  private final Map<Py.Global, Integer> globals = new IdentityHashMap<>();
  private final Map<String, Integer> modules = new HashMap<>();
  private final Map<Py.TimeZone, Integer> zones = new HashMap<>();
  private int nextMemo;

  private PickleWriter() {}

  /** An unsynchronized growable byte buffer (ByteArrayOutputStream locks on every byte). */
  private static final class Buffer {
    private byte[] bytes = new byte[4096];
    private int size;

    void write(int b) {
      if (size == bytes.length) {
        bytes = java.util.Arrays.copyOf(bytes, size * 2);
      }
      bytes[size++] = (byte) b;
    }

    void writeBytes(byte[] b) {
      if (size + b.length > bytes.length) {
        bytes = java.util.Arrays.copyOf(bytes, Math.max(size * 2, size + b.length));
      }
      System.arraycopy(b, 0, bytes, size, b.length);
      size += b.length;
    }

    byte[] toByteArray() {
      return java.util.Arrays.copyOf(bytes, size);
    }
  }

  static byte[] write(Object value) {
    PickleWriter w = new PickleWriter();
    w.out.write(0x80);
    w.out.write(4);
    w.value(value, 0);
    w.out.write('.');
    return w.out.toByteArray();
  }

  private void value(Object v, int depth) {
    if (depth > MAX_DEPTH) {
      throw new IllegalArgumentException("value nested too deeply to pickle");
    }
    switch (v) {
      case null -> out.write('N');
      case Boolean b -> out.write(b ? 0x88 : 0x89);
      case Integer i -> integer(i);
      case Long l -> integer(l);
      case BigInteger b -> bigInteger(b);
      case String s -> string(s);
      case byte[] b -> bytes(b);
      case Py.Tuple t -> tuple(t, depth);
      case Py.Obj o -> object(o, depth);
      case Py.DateTime d -> dateTime(d, depth);
      case Py.TimeZone z -> timeZone(z, depth);
      case Py.TimeDelta d -> timeDelta(d);
      case Py.Global g -> global(g);
      case Map<?, ?> m -> dict(m, depth);
      case Set<?> s -> set(s, depth);
      case List<?> l -> list(l, depth);
      default -> throw new IllegalArgumentException("cannot pickle " + v.getClass().getName());
    }
  }

  private void integer(long v) {
    if (v >= 0 && v < 256) {
      out.write('K');
      out.write((int) v);
    } else if (v >= 0 && v < 65536) {
      out.write('M');
      out.write((int) v & 0xff);
      out.write((int) (v >> 8) & 0xff);
    } else if (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE) {
      out.write('J');
      le32((int) v);
    } else {
      bigInteger(BigInteger.valueOf(v));
    }
  }

  private void bigInteger(BigInteger v) {
    if (v.bitLength() < 32) {
      integer(v.longValue());
      return;
    }
    byte[] be = v.toByteArray();
    out.write(0x8a);
    out.write(be.length);
    for (int i = be.length - 1; i >= 0; i--) {
      out.write(be[i]);
    }
  }

  private void string(String s) {
    Integer memo = strings.get(s);
    if (memo != null) {
      get(memo);
      return;
    }
    rawString(s);
    strings.put(s, memoize());
  }

  private void rawString(String s) {
    byte[] b = s.getBytes(StandardCharsets.UTF_8);
    if (b.length < 256) {
      out.write(0x8c);
      out.write(b.length);
    } else {
      out.write('X');
      le32(b.length);
    }
    out.writeBytes(b);
  }

  private void bytes(byte[] b) {
    if (b.length < 256) {
      out.write('C');
      out.write(b.length);
    } else {
      out.write('B');
      le32(b.length);
    }
    out.writeBytes(b);
    memoize();
  }

  private void tuple(Py.Tuple t, int depth) {
    switch (t.size()) {
      case 0 -> out.write(')');
      case 1, 2, 3 -> {
        for (Object item : t.items()) {
          value(item, depth + 1);
        }
        out.write(0x84 + t.size());
        memoize();
      }
      default -> {
        out.write('(');
        for (Object item : t.items()) {
          value(item, depth + 1);
        }
        out.write('t');
        memoize();
      }
    }
  }

  private void global(Py.Global g) {
    Integer memo = globals.get(g);
    if (memo != null) {
      get(memo);
      return;
    }
    // CPython memoizes by identity: a module's name string is one object, shared by all of its
    // classes; class names and user strings are separate objects even when equal.
    Integer module = modules.get(g.module());
    if (module != null) {
      get(module);
    } else {
      rawString(g.module());
      modules.put(g.module(), memoize());
    }
    rawString(g.name());
    memoize();
    out.write(0x93);
    globals.put(g, memoize());
  }

  private void object(Py.Obj o, int depth) {
    Integer memo = objects.get(o);
    if (memo != null) {
      get(memo);
      return;
    }
    global(o.type);
    out.write(')');
    out.write(0x81);
    objects.put(o, memoize());
    dict(o.dict, depth);
    out.write('b');
  }

  private void dateTime(Py.DateTime d, int depth) {
    global(DATETIME);
    LocalDateTime t = d.value();
    int micros = t.getNano() / 1000;
    bytes(
        new byte[] {
          (byte) (t.getYear() >> 8),
          (byte) t.getYear(),
          (byte) t.getMonthValue(),
          (byte) t.getDayOfMonth(),
          (byte) t.getHour(),
          (byte) t.getMinute(),
          (byte) t.getSecond(),
          (byte) (micros >> 16),
          (byte) (micros >> 8),
          (byte) micros
        });
    if (d.zone() == null) {
      out.write(0x85);
    } else {
      timeZone(d.zone(), depth);
      out.write(0x86);
    }
    memoize();
    out.write('R');
    memoize();
  }

  private void timeZone(Py.TimeZone z, int depth) {
    // CPython memoizes the timezone.utc singleton and refers back to it; an equal value will do.
    Integer memo = zones.get(z);
    if (memo != null) {
      get(memo);
      return;
    }
    global(TIMEZONE);
    timeDelta(z.offset());
    if (z.name() == null) {
      out.write(0x85);
    } else {
      string(z.name());
      out.write(0x86);
    }
    memoize();
    out.write('R');
    zones.put(z, memoize());
  }

  private void timeDelta(Py.TimeDelta d) {
    global(TIMEDELTA);
    integer(d.days());
    integer(d.seconds());
    integer(d.microseconds());
    out.write(0x87);
    memoize();
    out.write('R');
    memoize();
  }

  private void dict(Map<?, ?> m, int depth) {
    out.write('}');
    memoize();
    List<Map.Entry<?, ?>> entries = new java.util.ArrayList<>(m.entrySet());
    for (int from = 0; from < entries.size(); from += BATCH) {
      List<Map.Entry<?, ?>> batch = entries.subList(from, Math.min(entries.size(), from + BATCH));
      if (batch.size() == 1) {
        value(batch.get(0).getKey(), depth + 1);
        value(batch.get(0).getValue(), depth + 1);
        out.write('s');
        continue;
      }
      out.write('(');
      for (Map.Entry<?, ?> e : batch) {
        value(e.getKey(), depth + 1);
        value(e.getValue(), depth + 1);
      }
      out.write('u');
    }
  }

  private void set(Set<?> s, int depth) {
    out.write(0x8f);
    memoize();
    Iterator<?> it = s.iterator();
    while (it.hasNext()) {
      out.write('(');
      for (int n = 0; n < BATCH && it.hasNext(); n++) {
        value(it.next(), depth + 1);
      }
      out.write(0x90);
    }
  }

  private void list(List<?> l, int depth) {
    out.write(']');
    memoize();
    for (int from = 0; from < l.size(); from += BATCH) {
      List<?> batch = l.subList(from, Math.min(l.size(), from + BATCH));
      if (batch.size() == 1) {
        value(batch.get(0), depth + 1);
        out.write('a');
        continue;
      }
      out.write('(');
      for (Object item : batch) {
        value(item, depth + 1);
      }
      out.write('e');
    }
  }

  private int memoize() {
    out.write(0x94);
    return nextMemo++;
  }

  private void get(int index) {
    if (index < 256) {
      out.write('h');
      out.write(index);
    } else {
      out.write('j');
      le32(index);
    }
  }

  private void le32(int v) {
    out.write(v & 0xff);
    out.write((v >> 8) & 0xff);
    out.write((v >> 16) & 0xff);
    out.write((v >> 24) & 0xff);
  }
}
