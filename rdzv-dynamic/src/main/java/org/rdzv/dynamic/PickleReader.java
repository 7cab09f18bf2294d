package org.rdzv.dynamic;

import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.time.DateTimeException;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A whitelisting reader for the pickles of PyTorch's rendezvous state (protocols 2 to 5).
 *
 * <p>It accepts exactly the opcodes CPython 3.7–3.14 emit for this data and resolves only the
 * globals listed in {@link #ALLOWED}; anything else is a {@link PickleException}, never code
 * execution or an index exception. Values are decoded into the types described in {@link Py}.
 */
final class PickleReader {
  /** Thrown for input that is not a pickle this reader accepts. */
  static final class PickleException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    PickleException(String message) {
      super(message);
    }
  }

  static final Set<String> ALLOWED =
      Set.of(
          Py.RDZV_MODULE + "." + Py.STATE_CLASS,
          Py.RDZV_MODULE + "." + Py.NODE_CLASS,
          "datetime.datetime",
          "datetime.timezone",
          "datetime.timedelta",
          "builtins.set",
          "__builtin__.set",
          "builtins.frozenset",
          "__builtin__.frozenset",
          "_codecs.encode");

  private static final Object MARK = new Object();

  /** Upper bound on containers and memo entries, to refuse absurd input early. */
  private static final int MAX_ITEMS = 10_000_000;

  private final byte[] in;
  private int pos;
  private final ArrayList<Object> stack = new ArrayList<>();
  private final ArrayList<Integer> marks = new ArrayList<>();
  private Object[] memo = new Object[64];
  private int memoSize;
  private Map<Long, Object> sparseMemo;

  private PickleReader(byte[] in) {
    this.in = in;
  }

  /** Decodes one pickle; trailing bytes after STOP are an error. */
  static Object read(byte[] pickle) {
    PickleReader reader = new PickleReader(pickle);
    Object value = reader.run();
    if (reader.pos != pickle.length) {
      throw new PickleException("trailing data after STOP at offset " + reader.pos);
    }
    return value;
  }

  private Object run() {
    while (true) {
      int offset = pos;
      int op = u8();
      switch (op) {
        case 0x80 -> { // PROTO
          int proto = u8();
          if (proto < 2 || proto > 5) {
            throw new PickleException("unsupported pickle protocol " + proto);
          }
        }
        case 0x95 -> skip(8); // FRAME: a buffering hint only
        case '.' -> { // STOP
          if (stack.size() != 1 || !marks.isEmpty()) {
            throw new PickleException("unbalanced stack at STOP");
          }
          return stack.get(0);
        }
        case '(' -> marks.add(stack.size());
        case '0' -> pop();
        case '1' -> popMark();
        case '2' -> push(peek());
        case ')' -> push(new Py.Tuple(List.of()));
        case 't' -> push(new Py.Tuple(popMark()));
        case 0x85 -> push(tupleOf(1));
        case 0x86 -> push(tupleOf(2));
        case 0x87 -> push(tupleOf(3));
        case ']' -> push(new ArrayList<>());
        case 'a' -> {
          Object v = pop();
          list(peek()).add(v);
        }
        case 'e' -> {
          List<Object> items = popMark();
          list(peek()).addAll(items);
        }
        case '}' -> push(new LinkedHashMap<>());
        case 's' -> {
          Object v = pop();
          Object k = pop();
          dict(peek()).put(k, v);
        }
        case 'u' -> {
          List<Object> items = popMark();
          if (items.size() % 2 != 0) {
            throw new PickleException("SETITEMS with an odd number of items at offset " + offset);
          }
          Map<Object, Object> d = dict(peek());
          for (int i = 0; i < items.size(); i += 2) {
            d.put(items.get(i), items.get(i + 1));
          }
        }
        case 0x8f -> push(new LinkedHashSet<>());
        case 0x90 -> {
          List<Object> items = popMark();
          set(peek()).addAll(items);
        }
        case 0x91 -> push(new LinkedHashSet<>(popMark())); // FROZENSET
        case 'c' -> push(global(line(), line()));
        case 0x93 -> {
          Object name = pop();
          Object module = pop();
          if (!(module instanceof String m) || !(name instanceof String n)) {
            throw new PickleException("STACK_GLOBAL needs two strings at offset " + offset);
          }
          push(global(m, n));
        }
        case 0x81 -> { // NEWOBJ
          Object args = pop();
          push(newObject(pop(), args, offset));
        }
        case 0x92 -> { // NEWOBJ_EX
          Object kwargs = pop();
          Object args = pop();
          if (!(kwargs instanceof Map<?, ?> kw) || !kw.isEmpty()) {
            throw new PickleException("NEWOBJ_EX with keyword arguments at offset " + offset);
          }
          push(newObject(pop(), args, offset));
        }
        case 'R' -> {
          Object args = pop();
          push(reduce(pop(), args, offset));
        }
        case 'b' -> build(pop(), peek(), offset);
        case 'N' -> push(null);
        case 0x88 -> push(Boolean.TRUE);
        case 0x89 -> push(Boolean.FALSE);
        case 'I' -> push(textInt(line(), offset));
        case 'J' -> push((long) i32());
        case 'K' -> push((long) u8());
        case 'M' -> push((long) (u8() | (u8() << 8)));
        case 'L' -> {
          String text = line();
          if (text.endsWith("L")) {
            text = text.substring(0, text.length() - 1);
          }
          push(normalize(parseBig(text, offset)));
        }
        case 0x8a -> push(longN(u8()));
        case 0x8b -> push(longN(length(i32())));
        case 'V' -> push(rawUnicodeEscape(line()));
        case 'X' -> push(utf8(length(i32())));
        case 0x8c -> push(utf8(u8()));
        case 0x8d -> push(utf8(length(i64())));
        case 'B' -> push(bytes(length(i32())));
        case 'C' -> push(bytes(u8()));
        case 0x8e -> push(bytes(length(i64())));
        case 0x94 -> memoPut(memoSize, peek());
        case 'p' -> memoPut(parseIndex(line(), offset), peek());
        case 'q' -> memoPut(u8(), peek());
        case 'r' -> memoPut(i32() & 0xffffffffL, peek());
        case 'g' -> push(memoGet(parseIndex(line(), offset), offset));
        case 'h' -> push(memoGet(u8(), offset));
        case 'j' -> push(memoGet(i32() & 0xffffffffL, offset));
        default ->
            throw new PickleException(
                String.format("unsupported pickle opcode 0x%02x at offset %d", op, offset));
      }
    }
  }

  /** One instance per whitelisted class, so callers may compare by identity. */
  private static final Map<String, Py.Global> GLOBALS = new HashMap<>();

  static {
    for (String q : ALLOWED) {
      int dot = q.lastIndexOf('.');
      GLOBALS.put(q, Py.Global.of(q.substring(0, dot), q.substring(dot + 1)));
    }
  }

  private Py.Global global(String module, String name) {
    String qualified = module + "." + name;
    Py.Global g = GLOBALS.get(qualified);
    if (g == null) {
      throw new PickleException("refusing to load global " + qualified);
    }
    return g;
  }

  private Object newObject(Object cls, Object args, int offset) {
    if (!(cls instanceof Py.Global g) || !g.module().equals(Py.RDZV_MODULE)) {
      throw new PickleException("NEWOBJ of an unexpected class " + cls + " at offset " + offset);
    }
    if (!(args instanceof Py.Tuple t) || t.size() != 0) {
      throw new PickleException("NEWOBJ with constructor arguments at offset " + offset);
    }
    return new Py.Obj(g);
  }

  private Object reduce(Object callable, Object args, int offset) {
    if (!(callable instanceof Py.Global g) || !(args instanceof Py.Tuple t)) {
      throw new PickleException("REDUCE needs a global and a tuple at offset " + offset);
    }
    switch (g.qualified()) {
      case "datetime.datetime" -> {
        if (t.size() < 1 || t.size() > 2 || !(t.get(0) instanceof byte[] b) || b.length != 10) {
          throw new PickleException("unexpected datetime arguments at offset " + offset);
        }
        Py.TimeZone zone = null;
        if (t.size() == 2 && t.get(1) != null) {
          if (!(t.get(1) instanceof Py.TimeZone z)) {
            throw new PickleException("datetime with a tzinfo that is not a timezone");
          }
          zone = z;
        }
        return new Py.DateTime(dateTime(b, offset), zone);
      }
      case "datetime.timezone" -> {
        if (t.size() < 1 || t.size() > 2 || !(t.get(0) instanceof Py.TimeDelta d)) {
          throw new PickleException("unexpected timezone arguments at offset " + offset);
        }
        String name = t.size() == 2 && t.get(1) instanceof String s ? s : null;
        return new Py.TimeZone(d, name);
      }
      case "datetime.timedelta" -> {
        long[] parts = new long[3];
        if (t.size() > 3) {
          throw new PickleException("unexpected timedelta arguments at offset " + offset);
        }
        for (int i = 0; i < t.size(); i++) {
          if (!(t.get(i) instanceof Long l)) {
            throw new PickleException("unexpected timedelta arguments at offset " + offset);
          }
          parts[i] = l;
        }
        return new Py.TimeDelta(parts[0], parts[1], parts[2]);
      }
      case "builtins.set", "__builtin__.set", "builtins.frozenset", "__builtin__.frozenset" -> {
        Set<Object> s = new LinkedHashSet<>();
        if (t.size() == 1 && t.get(0) instanceof List<?> items) {
          s.addAll(items);
        } else if (t.size() != 0) {
          throw new PickleException("unexpected set arguments at offset " + offset);
        }
        return s;
      }
      case "_codecs.encode" -> {
        if (t.size() != 2
            || !(t.get(0) instanceof String text)
            || !(t.get(1) instanceof String enc)
            || !enc.equals("latin1")) {
          throw new PickleException("unexpected _codecs.encode arguments at offset " + offset);
        }
        byte[] out = new byte[text.length()];
        for (int i = 0; i < text.length(); i++) {
          char c = text.charAt(i);
          if (c > 0xff) {
            throw new PickleException("latin1 text out of range at offset " + offset);
          }
          out[i] = (byte) c;
        }
        return out;
      }
      default -> throw new PickleException("REDUCE of " + g.qualified() + " at offset " + offset);
    }
  }

  private static LocalDateTime dateTime(byte[] b, int offset) {
    int year = ((b[0] & 0xff) << 8) | (b[1] & 0xff);
    int month = b[2] & 0x7f; // bit 7 is the fold flag
    int micros = ((b[7] & 0xff) << 16) | ((b[8] & 0xff) << 8) | (b[9] & 0xff);
    try {
      return LocalDateTime.of(year, month, b[3], b[4], b[5], b[6], micros * 1000);
    } catch (DateTimeException e) {
      throw new PickleException("invalid datetime at offset " + offset + ": " + e.getMessage());
    }
  }

  private void build(Object state, Object target, int offset) {
    if (!(target instanceof Py.Obj obj)) {
      throw new PickleException("BUILD on a value that is not an object at offset " + offset);
    }
    if (state instanceof Py.Tuple t && t.size() == 2) {
      if (t.get(0) != null) {
        install(obj, t.get(0), offset);
      }
      install(obj, t.get(1), offset);
    } else {
      install(obj, state, offset);
    }
  }

  @SuppressWarnings("unchecked")
  private static void install(Py.Obj obj, Object state, int offset) {
    if (!(state instanceof Map<?, ?> m)) {
      throw new PickleException("BUILD with a state that is not a dict at offset " + offset);
    }
    boolean allStrings = true;
    for (Object k : m.keySet()) {
      if (!(k instanceof String)) {
        allStrings = false;
        break;
      }
    }
    if (allStrings && obj.dict.isEmpty()) {
      obj.dict = (Map<String, Object>) m; // adopt it: no copy per object
      return;
    }
    for (Map.Entry<?, ?> e : m.entrySet()) {
      if (!(e.getKey() instanceof String k)) {
        throw new PickleException("attribute name that is not a string at offset " + offset);
      }
      obj.dict.put(k, e.getValue());
    }
  }

  // ---- stack helpers

  private void push(Object v) {
    if (stack.size() >= MAX_ITEMS) {
      throw new PickleException("pickle stack too deep");
    }
    stack.add(v);
  }

  private Object pop() {
    int floor = marks.isEmpty() ? 0 : marks.get(marks.size() - 1);
    if (stack.size() <= floor) {
      throw new PickleException("stack underflow at offset " + (pos - 1));
    }
    return stack.remove(stack.size() - 1);
  }

  private Object peek() {
    int floor = marks.isEmpty() ? 0 : marks.get(marks.size() - 1);
    if (stack.size() <= floor) {
      throw new PickleException("stack underflow at offset " + (pos - 1));
    }
    return stack.get(stack.size() - 1);
  }

  private List<Object> popMark() {
    if (marks.isEmpty()) {
      throw new PickleException("no MARK on the stack at offset " + (pos - 1));
    }
    int m = marks.remove(marks.size() - 1);
    List<Object> items = new ArrayList<>(stack.subList(m, stack.size()));
    stack.subList(m, stack.size()).clear();
    return items;
  }

  private Py.Tuple tupleOf(int n) {
    Object[] items = new Object[n];
    for (int i = n - 1; i >= 0; i--) {
      items[i] = pop();
    }
    return new Py.Tuple(java.util.Arrays.asList(items));
  }

  @SuppressWarnings("unchecked")
  private List<Object> list(Object v) {
    if (v instanceof List<?> l && !(v instanceof Py.Tuple)) {
      return (List<Object>) l;
    }
    throw new PickleException("APPEND to a value that is not a list at offset " + (pos - 1));
  }

  @SuppressWarnings("unchecked")
  private Map<Object, Object> dict(Object v) {
    if (v instanceof Map<?, ?> m) {
      return (Map<Object, Object>) m;
    }
    throw new PickleException("SETITEM on a value that is not a dict at offset " + (pos - 1));
  }

  @SuppressWarnings("unchecked")
  private Set<Object> set(Object v) {
    if (v instanceof Set<?> s) {
      return (Set<Object>) s;
    }
    throw new PickleException("ADDITEMS on a value that is not a set at offset " + (pos - 1));
  }

  private void memoPut(long index, Object v) {
    if (index < 0 || index >= MAX_ITEMS) {
      if (sparseMemo == null) {
        sparseMemo = new HashMap<>();
      }
      if (sparseMemo.size() >= MAX_ITEMS) {
        throw new PickleException("memo too large");
      }
      sparseMemo.put(index, v);
      return;
    }
    int i = (int) index;
    if (i >= memo.length) {
      memo = java.util.Arrays.copyOf(memo, Math.max(memo.length * 2, i + 1));
    }
    if (memo[i] == null) {
      memoSize = Math.max(memoSize, i + 1);
    }
    memo[i] = v == null ? NONE : v;
  }

  private static final Object NONE = new Object();

  private Object memoGet(long index, int offset) {
    Object v = null;
    if (index >= 0 && index < memo.length) {
      v = memo[(int) index];
    } else if (sparseMemo != null) {
      v = sparseMemo.get(index);
    }
    if (v == null) {
      throw new PickleException("memo index " + index + " not defined at offset " + offset);
    }
    return v == NONE ? null : v;
  }

  // ---- raw input

  private int u8() {
    if (pos >= in.length) {
      throw new PickleException("truncated pickle (no STOP)");
    }
    return in[pos++] & 0xff;
  }

  private void skip(int n) {
    need(n);
    pos += n;
  }

  private void need(long n) {
    if (n < 0 || n > in.length - pos) {
      throw new PickleException("truncated pickle: need " + n + " bytes at offset " + pos);
    }
  }

  private int i32() {
    need(4);
    int v =
        (in[pos] & 0xff)
            | (in[pos + 1] & 0xff) << 8
            | (in[pos + 2] & 0xff) << 16
            | in[pos + 3] << 24;
    pos += 4;
    return v;
  }

  private long i64() {
    need(8);
    long v = 0;
    for (int i = 7; i >= 0; i--) {
      v = (v << 8) | (in[pos + i] & 0xff);
    }
    pos += 8;
    return v;
  }

  private int length(long n) {
    need(n);
    return (int) n;
  }

  private byte[] bytes(int n) {
    need(n);
    byte[] b = java.util.Arrays.copyOfRange(in, pos, pos + n);
    pos += n;
    return b;
  }

  private String utf8(int n) {
    need(n);
    String s = new String(in, pos, n, StandardCharsets.UTF_8);
    pos += n;
    return s;
  }

  private String line() {
    int start = pos;
    while (pos < in.length && in[pos] != '\n') {
      pos++;
    }
    if (pos >= in.length) {
      throw new PickleException("truncated pickle: unterminated line at offset " + start);
    }
    String s = new String(in, start, pos - start, StandardCharsets.ISO_8859_1);
    pos++;
    return s;
  }

  private Object longN(int n) {
    byte[] b = bytes(n);
    if (n == 0) {
      return 0L;
    }
    byte[] bigEndian = new byte[n];
    for (int i = 0; i < n; i++) {
      bigEndian[i] = b[n - 1 - i];
    }
    return normalize(new BigInteger(bigEndian));
  }

  private static Object normalize(BigInteger v) {
    return v.bitLength() < 64 ? (Object) v.longValue() : v;
  }

  private static Object textInt(String text, int offset) {
    if (text.equals("01")) {
      return Boolean.TRUE;
    }
    if (text.equals("00")) {
      return Boolean.FALSE;
    }
    return normalize(parseBig(text, offset));
  }

  private static BigInteger parseBig(String text, int offset) {
    try {
      return new BigInteger(text.strip());
    } catch (NumberFormatException e) {
      throw new PickleException("invalid integer text at offset " + offset);
    }
  }

  private static long parseIndex(String text, int offset) {
    try {
      return Long.parseLong(text.strip());
    } catch (NumberFormatException e) {
      throw new PickleException("invalid memo index at offset " + offset);
    }
  }

  private static String rawUnicodeEscape(String latin1) {
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < latin1.length(); i++) {
      char c = latin1.charAt(i);
      if (c == '\\'
          && i + 1 < latin1.length()
          && (latin1.charAt(i + 1) == 'u' || latin1.charAt(i + 1) == 'U')) {
        int digits = latin1.charAt(i + 1) == 'u' ? 4 : 8;
        if (i + 2 + digits <= latin1.length()) {
          try {
            sb.appendCodePoint(Integer.parseInt(latin1.substring(i + 2, i + 2 + digits), 16));
            i += 1 + digits;
            continue;
          } catch (IllegalArgumentException e) {
            // not an escape: keep the text as is
          }
        }
      }
      sb.append(c);
    }
    return sb.toString();
  }
}
