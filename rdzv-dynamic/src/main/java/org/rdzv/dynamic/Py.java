package org.rdzv.dynamic;

import java.time.LocalDateTime;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The plain Java values a whitelisted pickle decodes into, and that {@link PickleWriter} encodes.
 *
 * <p>Mapping: {@code None} → {@code null}; {@code bool} → {@link Boolean}; {@code int} → {@link
 * Long} (or {@link java.math.BigInteger} beyond 64 bits); {@code str} → {@link String}; {@code
 * bytes} → {@code byte[]}; {@code list} → {@link java.util.List}; {@code tuple} → {@link Tuple};
 * {@code dict} → {@link java.util.Map} (insertion-ordered); {@code set}/{@code frozenset} → {@link
 * java.util.Set}; {@code datetime.datetime} → {@link DateTime}; {@code datetime.timezone} → {@link
 * TimeZone}; {@code datetime.timedelta} → {@link TimeDelta}; instances of the two rendezvous
 * classes → {@link Obj}.
 */
final class Py {
  private Py() {}

  static final String RDZV_MODULE = "torch.distributed.elastic.rendezvous.dynamic_rendezvous";
  static final String STATE_CLASS = "_RendezvousState";
  static final String NODE_CLASS = "_NodeDesc";

  /** A class reference that passed the whitelist. */
  record Global(String module, String name, String qualified) {
    private static final java.util.concurrent.ConcurrentHashMap<String, Global> CANONICAL =
        new java.util.concurrent.ConcurrentHashMap<>();

    Global(String module, String name) {
      this(module, name, module + "." + name);
    }

    /** The one instance for {@code module.name}, so hot paths compare by identity. */
    static Global of(String module, String name) {
      return CANONICAL.computeIfAbsent(module + "." + name, q -> new Global(module, name, q));
    }
  }

  /** A Python tuple; may hold {@code null} (None). */
  record Tuple(List<Object> items) {
    Tuple {
      items = java.util.Collections.unmodifiableList(items);
    }

    Object get(int i) {
      return items.get(i);
    }

    int size() {
      return items.size();
    }
  }

  /**
   * An instance of a whitelisted class, with its attribute dictionary. Equality is identity, as the
   * decoder builds each object before it is used as a key, and callers convert objects into records
   * before comparing them.
   */
  static final class Obj {
    final Global type;

    /** The attribute dictionary; BUILD may adopt the pickled dict itself (all keys strings). */
    Map<String, Object> dict = new LinkedHashMap<>();

    Obj(Global type) {
      this.type = Objects.requireNonNull(type);
    }

    @Override
    public String toString() {
      return type.name() + dict;
    }
  }

  /**
   * A {@code datetime.datetime}; {@code zone} is {@code null} for a naive value.
   *
   * @param value the wall-clock fields, microsecond precision
   */
  record DateTime(LocalDateTime value, TimeZone zone) {}

  /** A {@code datetime.timezone} with a fixed offset (UTC is offset zero). */
  record TimeZone(TimeDelta offset, String name) {}

  /** A {@code datetime.timedelta}. */
  record TimeDelta(long days, long seconds, long microseconds) {
    long totalMicros() {
      return (days * 86_400 + seconds) * 1_000_000 + microseconds;
    }
  }
}
