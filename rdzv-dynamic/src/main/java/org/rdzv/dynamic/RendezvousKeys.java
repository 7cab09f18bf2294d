package org.rdzv.dynamic;

import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Every key the dynamic rendezvous writes for one run id, PyTorch's and rdzv's own, in one place.
 *
 * <p><b>PyTorch's keys</b> stay byte for byte PyTorch's, so that PyTorch nodes meet Java nodes: the
 * state {@code torch.rendezvous.<run_id>} ({@link #state()}) and the store of round {@code n},
 * {@code PrefixStore("torch.rendezvous.<run_id>.<n>")}, whose keys are {@code
 * torch.rendezvous.<run_id>.<n>/<key>} ({@link #roundPrefix(long)}). These are distinct for
 * distinct run ids and rounds <em>unless</em> a run id has the form {@code <p>.<digits>/<rest>}
 * (see {@link #pytorchCollision(String)}): then its state key is also a key of round {@code
 * <digits>} of run {@code <p>}. That is PyTorch's scheme and cannot change without leaving PyTorch;
 * rdzv warns about such run ids.
 *
 * <p><b>rdzv's own keys</b> (change signals, the turn queue, node notes) live outside every key
 * PyTorch writes, under {@code rdzv/v1/<E(run_id)>/} on a store and {@code /rdzv/v1/<E(run_id)>/}
 * on etcd, where {@code E} ({@link #encodeRunId}) is the run id itself when it consists of ASCII
 * letters, digits, {@code . _ -} (and is not {@code .} or {@code ..}), else {@code ~} followed by
 * the unpadded base64url of its UTF-8 bytes. {@code E} is injective and its result never contains
 * {@code /}, so the first path segment after the namespace names exactly one run id, and no key or
 * key prefix of one run id is a key or a prefix of another's: own keys are injective across run ids
 * for every run id, including those PyTorch's own scheme cannot separate.
 *
 * <p>Immutable and thread-safe; {@link #of} validates the run id.
 */
public final class RendezvousKeys {

  /** The start of every key of PyTorch's dynamic rendezvous on a store. */
  public static final String PYTORCH_PREFIX = "torch.rendezvous.";

  /** The namespace of rdzv's own keys on a store; no key PyTorch writes starts with it. */
  public static final String OWN_PREFIX = "rdzv/v1/";

  /** The namespace of rdzv's own keys on etcd (v2 and v3), outside PyTorch's directories. */
  public static final String ETCD_OWN_PREFIX = "/" + OWN_PREFIX;

  /** A run id with this shape shares PyTorch keys with round {@code <digits>} of run {@code p}. */
  private static final Pattern ROUND_SHAPE = Pattern.compile("^(.+?)\\.(\\d+)/", Pattern.DOTALL);

  /**
   * rdzv's own keys of a run, each a fixed name under the run's namespace. Those with an index or a
   * name take it as the last path segment ({@code changed/<n>}); the names are fixed, so a key
   * determines its kind.
   */
  public enum Own {
    /** c10d: the counter of significant changes. */
    EPOCH("epoch"),
    /** c10d: {@code changed/<n>}, set when the epoch reaches {@code n}. */
    CHANGED("changed/"),
    /** c10d: how many nodes signal their changes (an upper bound). */
    SIGNALLING("signalling"),
    /** c10d: the turn ticket counter. */
    TURNS("turns"),
    /** c10d: {@code queue/<ticket>}, the descriptor of a node queued to join. */
    QUEUE("queue/"),
    /** c10d: {@code turn/<ticket>}, set when that ticket's turn comes. */
    TURN("turn/"),
    /** c10d: how many turns were passed on. */
    PASSED("passed"),
    /** etcd: the key significant writes touch. */
    SIGNAL("signal"),
    /** etcd: the directory (v2) or key prefix (v3) of queued writers. */
    TURN_QUEUE("turn_queue/"),
    /** {@code node/<E(node)>}: what a node tells status tools about its join. */
    NODE("node/"),
    /** {@code scalable/<key>}: the keys of the scalable protocol ({@code protocol=scalable}). */
    SCALABLE("scalable/");

    private final String segment;

    Own(String segment) {
      this.segment = segment;
    }

    /** Whether keys of this kind end with an index or a name. */
    public boolean hasTail() {
      return segment.endsWith("/");
    }

    /** The kind's path segment, with a trailing {@code /} when it takes a tail. */
    public String segment() {
      return segment;
    }
  }

  private final String runId;
  private final String encoded;

  private RendezvousKeys(String runId) {
    this.runId = runId;
    this.encoded = encodeRunId(runId);
  }

  /**
   * The keys of {@code runId}.
   *
   * @throws IllegalArgumentException if the run id is empty (PyTorch's message) or is not valid
   *     Unicode text (an unpaired surrogate has no UTF-8 form; PyTorch cannot encode it either)
   */
  public static RendezvousKeys of(String runId) {
    validateRunId(runId);
    return new RendezvousKeys(runId);
  }

  /**
   * Checks a run id as {@link #of} does.
   *
   * @throws IllegalArgumentException if it is empty or not valid Unicode text
   */
  public static void validateRunId(String runId) {
    if (runId == null || runId.isEmpty()) {
      throw new IllegalArgumentException("The run id must be a non-empty string.");
    }
    for (int i = 0; i < runId.length(); i++) {
      char c = runId.charAt(i);
      if (Character.isHighSurrogate(c)
          && i + 1 < runId.length()
          && Character.isLowSurrogate(runId.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        // Java would write '?' for it, so two run ids would share every key.
        throw new IllegalArgumentException(
            String.format(
                "The run id must be valid Unicode text: it has an unpaired surrogate U+%04X at"
                    + " index %d, which has no UTF-8 form.",
                (int) c, i));
      }
    }
  }

  /** The run id. */
  public String runId() {
    return runId;
  }

  /** PyTorch's state key, {@code torch.rendezvous.<run_id>}. */
  public String state() {
    return PYTORCH_PREFIX + runId;
  }

  /**
   * PyTorch's prefix of round {@code round}'s store, {@code torch.rendezvous.<run_id>.<round>} (a
   * {@code PrefixStore} adds {@code /} and the key).
   */
  public String roundPrefix(long round) {
    if (round < 0) {
      throw new IllegalArgumentException("a round is not negative, got " + round);
    }
    return PYTORCH_PREFIX + runId + "." + round;
  }

  /** The run's namespace on a store: {@code rdzv/v1/<E(run_id)>/}. */
  public String ownPrefix() {
    return OWN_PREFIX + encoded + "/";
  }

  /** An own key without a tail, e.g. {@code rdzv/v1/job/epoch}. */
  public String own(Own kind) {
    if (kind.hasTail()) {
      throw new IllegalArgumentException(kind + " keys take an index or a name");
    }
    return ownPrefix() + kind.segment();
  }

  /** An own key with an index, e.g. {@code rdzv/v1/job/changed/7}. */
  public String own(Own kind, long index) {
    return ownPrefix(kind) + index;
  }

  /** An own key with a name (encoded like a run id), e.g. {@code rdzv/v1/job/node/h_1_0}. */
  public String own(Own kind, String name) {
    return ownPrefix(kind) + encodeRunId(name);
  }

  /** The prefix of the own keys of a kind that takes a tail, e.g. {@code rdzv/v1/job/turn/}. */
  public String ownPrefix(Own kind) {
    if (!kind.hasTail()) {
      throw new IllegalArgumentException(kind + " keys take no index or name");
    }
    return ownPrefix() + kind.segment();
  }

  /** {@link #own(Own)} as an etcd key: {@code /rdzv/v1/<E(run_id)>/...}. */
  public String etcdOwn(Own kind) {
    return "/" + own(kind);
  }

  /**
   * {@link #ownPrefix(Own)} as an etcd directory or key prefix, without the trailing {@code /}:
   * {@code /rdzv/v1/<E(run_id)>/turn_queue}.
   */
  public String etcdOwnDirectory(Own kind) {
    String prefix = "/" + ownPrefix(kind);
    return prefix.substring(0, prefix.length() - 1);
  }

  /**
   * {@code E(s)}: {@code s} itself if it is made of ASCII letters, digits, {@code . _ -} and is
   * neither {@code .} nor {@code ..} (etcd v2 would clean those path segments away); else {@code ~}
   * and the unpadded base64url of its UTF-8 bytes. Injective (the plain alphabet has no {@code ~})
   * and never contains {@code /}; {@link #decodeRunId} inverts it.
   */
  public static String encodeRunId(String s) {
    if (isPlain(s)) {
      return s;
    }
    return "~"
        + Base64.getUrlEncoder()
            .withoutPadding()
            .encodeToString(s.getBytes(StandardCharsets.UTF_8));
  }

  /**
   * The inverse of {@link #encodeRunId}: empty for text that no run id encodes to.
   *
   * @param encoded a path segment of an own key
   */
  public static Optional<String> decodeRunId(String encoded) {
    if (encoded.startsWith("~")) {
      try {
        String s =
            new String(Base64.getUrlDecoder().decode(encoded.substring(1)), StandardCharsets.UTF_8);
        // Only the canonical form: the text re-encodes to the same segment.
        return encodeRunId(s).equals(encoded) ? Optional.of(s) : Optional.empty();
      } catch (IllegalArgumentException e) {
        return Optional.empty();
      }
    }
    return isPlain(encoded) ? Optional.of(encoded) : Optional.empty();
  }

  private static boolean isPlain(String s) {
    if (s.isEmpty() || s.equals(".") || s.equals("..")) {
      return false;
    }
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      boolean ok =
          (c >= 'a' && c <= 'z')
              || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9')
              || c == '.'
              || c == '_'
              || c == '-';
      if (!ok) {
        return false;
      }
    }
    return true;
  }

  /**
   * Whether PyTorch's own keys of {@code runId} can equal those of another run id on a shared
   * store, and with which: a run id {@code <p>.<n>/<rest>} (with {@code p} not empty and {@code n}
   * digits) has the state key {@code torch.rendezvous.<p>.<n>/<rest>}, which is key {@code <rest>}
   * of round {@code n} of run {@code p}, and its round keys are round {@code n}'s keys of {@code p}
   * too. Two run ids without that shape never share a PyTorch key: a run id without {@code /} ends
   * at the first {@code /} of a round key, and the round is the digits after its last dot.
   *
   * @return a one-line explanation naming the other run id and round, or empty if none can collide
   */
  public static Optional<String> pytorchCollision(String runId) {
    Matcher m = ROUND_SHAPE.matcher(runId);
    if (!m.find()) {
      return Optional.empty();
    }
    String other = m.group(1);
    String round = m.group(2);
    return Optional.of(
        "the run id '"
            + runId
            + "' has the shape <run_id>.<round>/...: its PyTorch keys (state "
            + PYTORCH_PREFIX
            + runId
            + ") are also keys of round "
            + round
            + " of the run id '"
            + other
            + "', so the two must not share a store (PyTorch's key scheme; use a run id"
            + " without '/')");
  }

  @Override
  public String toString() {
    return "RendezvousKeys(" + runId + ")";
  }
}
