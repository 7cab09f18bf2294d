package org.rdzv.store;

import java.util.Arrays;
import java.util.Objects;

/**
 * A change of a watched key, pushed by a 1.13-family server over the callback connection (see
 * {@link TcpStore#watchKey}).
 *
 * @param type what happened
 * @param key the key as the user named it (without the wire's {@code /} prefix)
 * @param oldValue the value before (empty for {@link Type#KEY_CREATED})
 * @param newValue the value after (empty for {@link Type#KEY_DELETED})
 */
public record WatchEvent(Type type, String key, byte[] oldValue, byte[] newValue) {

  /** PyTorch's {@code WatchResponseType}, with its wire codes. */
  public enum Type {
    KEY_UPDATED(0),
    KEY_CREATED(1),
    KEY_DELETED(2);

    private final int code;

    Type(int code) {
      this.code = code;
    }

    /** The byte on the wire. */
    public int code() {
      return code;
    }

    /** The type for a wire code, or {@code null} if unknown. */
    static Type of(int code) {
      for (Type t : values()) {
        if (t.code == code) {
          return t;
        }
      }
      return null;
    }
  }

  public WatchEvent {
    Objects.requireNonNull(type, "type");
    Objects.requireNonNull(key, "key");
    Objects.requireNonNull(oldValue, "oldValue");
    Objects.requireNonNull(newValue, "newValue");
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof WatchEvent e
        && type == e.type
        && key.equals(e.key)
        && Arrays.equals(oldValue, e.oldValue)
        && Arrays.equals(newValue, e.newValue);
  }

  @Override
  public int hashCode() {
    return Objects.hash(type, key, Arrays.hashCode(oldValue), Arrays.hashCode(newValue));
  }

  @Override
  public String toString() {
    return "WatchEvent["
        + type
        + " "
        + key
        + " "
        + oldValue.length
        + "B -> "
        + newValue.length
        + "B]";
  }
}
