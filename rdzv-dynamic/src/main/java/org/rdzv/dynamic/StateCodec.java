package org.rdzv.dynamic;

import java.math.BigInteger;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.rdzv.api.RendezvousStateException;

/** Converts between {@link MutableState} and PyTorch's pickled {@code _RendezvousState}. */
final class StateCodec {
  private StateCodec() {}

  private static final String CORRUPT =
      "The rendezvous state is corrupt. See inner exception for details.";
  private static final Py.Global STATE = Py.Global.of(Py.RDZV_MODULE, Py.STATE_CLASS);
  private static final Py.Global NODE = Py.Global.of(Py.RDZV_MODULE, Py.NODE_CLASS);
  private static final Py.TimeZone UTC = new Py.TimeZone(new Py.TimeDelta(0, 0, 0), null);
  private static final Set<String> KNOWN =
      Set.of(
          "round",
          "complete",
          "deadline",
          "closed",
          "participants",
          "wait_list",
          "redundancy_list",
          "last_heartbeats");

  /** Decodes a state; anything unexpected is a {@link RendezvousStateException}. */
  static MutableState decode(byte[] pickle) {
    try {
      return fromPy(PickleReader.read(pickle));
    } catch (PickleReader.PickleException | IllegalArgumentException | ClassCastException e) {
      throw new RendezvousStateException(CORRUPT, new IllegalArgumentException(e.getMessage(), e));
    }
  }

  /** Encodes {@code state} in {@code dialect}. */
  static byte[] encode(MutableState state, StateDialect dialect) {
    Map<NodeDescriptor, Py.Obj> nodes = new HashMap<>();
    Py.Obj root = new Py.Obj(STATE);
    root.dict.put("round", state.round);
    root.dict.put("complete", state.complete);
    root.dict.put("deadline", state.deadline == null ? null : time(state.deadline, dialect));
    root.dict.put("closed", state.closed);
    Map<Object, Object> participants = new LinkedHashMap<>();
    state.participants.forEach((n, r) -> participants.put(node(n, dialect, nodes), (long) r));
    root.dict.put("participants", participants);
    root.dict.put("wait_list", nodeSet(state.waitList, dialect, nodes));
    if (dialect.redundancyList()) {
      root.dict.put("redundancy_list", nodeSet(state.redundancyList, dialect, nodes));
    }
    Map<Object, Object> heartbeats = new LinkedHashMap<>();
    state.lastHeartbeats.forEach(
        (n, t) -> heartbeats.put(node(n, dialect, nodes), time(t, dialect)));
    root.dict.put("last_heartbeats", heartbeats);
    state.extras.forEach(
        (k, v) -> {
          if (!root.dict.containsKey(k) && !(k.equals("redundancy_list"))) {
            root.dict.put(k, v);
          }
        });
    return PickleWriter.write(root);
  }

  private static Set<Object> nodeSet(
      Set<NodeDescriptor> set, StateDialect d, Map<NodeDescriptor, Py.Obj> nodes) {
    Set<Object> out = new LinkedHashSet<>();
    for (NodeDescriptor n : set) {
      out.add(node(n, d, nodes));
    }
    return out;
  }

  private static Py.Obj node(NodeDescriptor n, StateDialect d, Map<NodeDescriptor, Py.Obj> nodes) {
    return nodes.computeIfAbsent(
        n,
        k -> {
          Py.Obj o = new Py.Obj(NODE);
          o.dict.put(d.nodeField(), k.host());
          o.dict.put("pid", k.pid());
          o.dict.put("local_id", k.localId());
          return o;
        });
  }

  private static Py.DateTime time(Instant t, StateDialect d) {
    LocalDateTime utc =
        LocalDateTime.ofInstant(t, ZoneOffset.UTC).withNano((t.getNano() / 1000) * 1000);
    return new Py.DateTime(utc, d.awareTimestamps() ? UTC : null);
  }

  // ---- decoding

  private static MutableState fromPy(Object root) {
    if (!(root instanceof Py.Obj o) || o.type != STATE) {
      throw new IllegalArgumentException(
          "the pickle does not hold a _RendezvousState but " + describe(root));
    }
    Map<String, Object> d = o.dict;
    for (String required :
        List.of(
            "round",
            "complete",
            "deadline",
            "closed",
            "participants",
            "wait_list",
            "last_heartbeats")) {
      if (!d.containsKey(required)) {
        throw new IllegalArgumentException("the state has no attribute '" + required + "'");
      }
    }
    Hints hints = new Hints();
    MutableState s = new MutableState();
    s.round = integer(d.get("round"), "round");
    s.complete = bool(d.get("complete"), "complete");
    s.deadline = d.get("deadline") == null ? null : instant(d.get("deadline"), "deadline", hints);
    s.closed = bool(d.get("closed"), "closed");
    for (Map.Entry<?, ?> e : map(d.get("participants"), "participants").entrySet()) {
      long rank = integer(e.getValue(), "participants rank");
      s.participants.put(node(e.getKey(), hints), (int) rank);
    }
    for (Object n : set(d.get("wait_list"), "wait_list")) {
      s.waitList.add(node(n, hints));
    }
    if (d.containsKey("redundancy_list")) {
      hints.redundancyList = true;
      for (Object n : set(d.get("redundancy_list"), "redundancy_list")) {
        s.redundancyList.add(node(n, hints));
      }
    }
    for (Map.Entry<?, ?> e : map(d.get("last_heartbeats"), "last_heartbeats").entrySet()) {
      s.lastHeartbeats.put(
          node(e.getKey(), hints), instant(e.getValue(), "last_heartbeats", hints));
    }
    d.forEach(
        (k, v) -> {
          if (!KNOWN.contains(k)) {
            if (depth(v, 0) > MAX_EXTRA_DEPTH) {
              throw new IllegalArgumentException(
                  "the state attribute '" + k + "' is nested too deeply");
            }
            s.extras.put(k, v);
          }
        });
    s.dialect = hints.dialect();
    s.dialectProven = s.dialect != null && hints.proven();
    s.twoX = hints.redundancyList || "addr".equals(hints.nodeField);
    return s;
  }

  private static final class Hints {
    final java.util.IdentityHashMap<Object, NodeDescriptor> nodes =
        new java.util.IdentityHashMap<>();
    String nodeField;
    boolean aware;
    boolean naive;
    boolean redundancyList;

    StateDialect dialect() {
      if ("fqdn".equals(nodeField)) {
        return StateDialect.V1_13;
      }
      if ("addr".equals(nodeField) || redundancyList || aware) {
        return aware
            ? StateDialect.V2_6
            : (naive || redundancyList || nodeField != null) ? StateDialect.V2_0 : null;
      }
      return null;
    }

    /**
     * Whether the state proves {@link #dialect()}: {@code fqdn} nodes are 1.13's; among the 2.x
     * dialects only the timestamps tell 2.6+ (aware) from 2.0-2.5 (naive), so a 2.x state without
     * any (every node left) proves only its family.
     */
    boolean proven() {
      return "fqdn".equals(nodeField) || aware || naive;
    }
  }

  /** Unknown attributes are written back; refuse what the writer could not write. */
  private static final int MAX_EXTRA_DEPTH = 100;

  private static int depth(Object v, int level) {
    if (level > MAX_EXTRA_DEPTH) {
      return level;
    }
    int max = level;
    if (v instanceof Map<?, ?> m) {
      for (Map.Entry<?, ?> e : m.entrySet()) {
        max = Math.max(max, Math.max(depth(e.getKey(), level + 1), depth(e.getValue(), level + 1)));
      }
    } else if (v instanceof java.util.Collection<?> c) {
      for (Object o : c) {
        max = Math.max(max, depth(o, level + 1));
      }
    } else if (v instanceof Py.Tuple t) {
      for (Object o : t.items()) {
        max = Math.max(max, depth(o, level + 1));
      }
    } else if (v instanceof Py.Obj o) {
      max = Math.max(max, depth(o.dict, level + 1));
    }
    return max;
  }

  private static NodeDescriptor node(Object value, Hints hints) {
    NodeDescriptor seen = hints.nodes.get(value);
    if (seen != null) {
      return seen;
    }
    NodeDescriptor n = newNode(value, hints);
    hints.nodes.put(value, n);
    return n;
  }

  private static NodeDescriptor newNode(Object value, Hints hints) {
    if (!(value instanceof Py.Obj o) || o.type != NODE) {
      throw new IllegalArgumentException("expected a _NodeDesc, found " + describe(value));
    }
    String field = o.dict.containsKey("fqdn") ? "fqdn" : o.dict.containsKey("addr") ? "addr" : null;
    if (field == null) {
      throw new IllegalArgumentException("a _NodeDesc has neither 'fqdn' nor 'addr'");
    }
    if (hints.nodeField != null && !hints.nodeField.equals(field)) {
      throw new IllegalArgumentException("the state mixes 'fqdn' and 'addr' node descriptors");
    }
    hints.nodeField = field;
    if (!(o.dict.get(field) instanceof String host)) {
      throw new IllegalArgumentException("a _NodeDesc host is not a string");
    }
    return new NodeDescriptor(
        host, integer(o.dict.get("pid"), "pid"), integer(o.dict.get("local_id"), "local_id"));
  }

  private static Instant instant(Object value, String what, Hints hints) {
    if (!(value instanceof Py.DateTime dt)) {
      throw new IllegalArgumentException(what + " is not a datetime but " + describe(value));
    }
    if (dt.zone() != null) {
      if (dt.zone().offset().totalMicros() != 0) {
        throw new IllegalArgumentException(what + " has a timezone that is not UTC");
      }
      hints.aware = true;
    } else {
      hints.naive = true;
    }
    if (hints.aware && hints.naive) {
      throw new IllegalArgumentException("the state mixes naive and timezone-aware datetimes");
    }
    return dt.value().toInstant(ZoneOffset.UTC);
  }

  private static long integer(Object v, String what) {
    if (v instanceof Long l) {
      return l;
    }
    if (v instanceof Boolean b) {
      return b ? 1 : 0;
    }
    if (v instanceof BigInteger) {
      throw new IllegalArgumentException(what + " is out of range");
    }
    throw new IllegalArgumentException(what + " is not an integer but " + describe(v));
  }

  private static boolean bool(Object v, String what) {
    if (v instanceof Boolean b) {
      return b;
    }
    if (v instanceof Long l && (l == 0 || l == 1)) {
      return l == 1;
    }
    throw new IllegalArgumentException(what + " is not a boolean but " + describe(v));
  }

  private static Map<?, ?> map(Object v, String what) {
    if (v instanceof Map<?, ?> m) {
      return m;
    }
    throw new IllegalArgumentException(what + " is not a dict but " + describe(v));
  }

  private static Set<?> set(Object v, String what) {
    if (v instanceof Set<?> s) {
      return s;
    }
    throw new IllegalArgumentException(what + " is not a set but " + describe(v));
  }

  private static String describe(Object v) {
    return v == null
        ? "None"
        : v instanceof Py.Obj o ? o.type.qualified() : v.getClass().getSimpleName();
  }
}
