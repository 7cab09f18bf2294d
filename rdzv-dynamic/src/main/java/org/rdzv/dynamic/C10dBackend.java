package org.rdzv.dynamic;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.Store;
import org.rdzv.api.StoreException;
import org.rdzv.store.TcpStore;

/**
 * PyTorch's {@code C10dRendezvousBackend}: the state is {@code base64(pickle)} under {@code
 * torch.rendezvous.<run_id>}, {@code Y2FuaW1hZGFt} means "no state", and the fencing token is the
 * whole previous value, compared by the store's COMPARE_SET.
 *
 * <p>A Java node also signals its significant changes to other Java nodes ({@link
 * C10dChangeSignal}) and queues for turns among Java writers ({@link C10dTurnQueue}), on keys of
 * their own outside PyTorch's ({@link RendezvousKeys}); PyTorch nodes neither see nor need them.
 */
final class C10dBackend implements RendezvousBackend, AutoCloseable {
  static final byte[] NULL_SENTINEL = "Y2FuaW1hZGFt".getBytes(StandardCharsets.US_ASCII);
  static final String CONNECTION_FAILED =
      "The connection to the C10d store has failed. See inner exception for details.";

  /** The fencing token: the raw value read (PyTorch's token) and the epoch known before it. */
  record Token(byte[] value, long epoch) {}

  private final Store store;
  private final String key;
  private final RendezvousKeys keys;

  /** rdzv's additions, or {@code null} when this node does not signal (PyTorch's behaviour). */
  private final C10dChangeSignal signal;

  private final C10dTurnQueue turns;

  /**
   * As PyTorch's constructor: writes the "no state" sentinel if the key is missing; with {@code
   * signalChanges}, also joins the change signal and turn queue of Java nodes.
   */
  C10dBackend(Store store, String runId, boolean signalChanges) {
    RendezvousKeys keys = RendezvousKeys.of(runId);
    this.store = store;
    this.keys = keys;
    this.key = keys.state();
    call(() -> store.compareSet(key, new byte[0], NULL_SENTINEL));
    this.signal = signalChanges ? new C10dChangeSignal(store, keys) : null;
    this.turns = signalChanges ? new C10dTurnQueue(store, keys, signal::waiter) : null;
  }

  @Override
  public String name() {
    return "c10d";
  }

  @Override
  public long signallingNodes() {
    return signal == null ? 0 : signal.signallingNodes();
  }

  /**
   * Reads the state value. PyTorch's {@code get} is a WAIT and a GET; on a TCP store a COMPARE_SET
   * from the sentinel to the sentinel returns the current value in one round trip and changes
   * nothing (the key always exists: the constructor created it).
   */
  private byte[] read() {
    if (store instanceof TcpStore) {
      return store.compareSet(key, NULL_SENTINEL, NULL_SENTINEL);
    }
    return store.get(key);
  }

  @Override
  public Optional<State> getState() {
    long epoch = knownEpoch();
    byte[] value = call(() -> read());
    return decode(value).map(bytes -> new State(bytes, new Token(value, epoch)));
  }

  @Override
  public Optional<SetResult> setState(byte[] state, Object token) {
    return setState(state, token, true);
  }

  @Override
  public Optional<SetResult> setState(byte[] state, Object token, boolean significant) {
    byte[] expected;
    long epoch;
    if (token == null) {
      expected = NULL_SENTINEL;
      epoch = knownEpoch();
    } else if (token instanceof Token t) {
      expected = t.value();
      epoch = t.epoch();
    } else {
      return getState().map(s -> new SetResult(s.state(), s.token(), false));
    }
    byte[] desired = Base64.getEncoder().encode(state);
    byte[] stored = call(() -> store.compareSet(key, expected, desired));
    boolean written = Arrays.equals(stored, desired);
    if (written && significant && signal != null) {
      long n = signal.announce();
      // Our own announcement is no news to us, unless another one slipped in between.
      if (n == epoch + 1) {
        epoch = n;
      }
    }
    long tokenEpoch = epoch;
    return decode(stored)
        .map(bytes -> new SetResult(bytes, new Token(stored, tokenEpoch), written));
  }

  /**
   * Reads the state of {@code runId} from {@code store} without writing anything (not even the
   * sentinel the constructor writes): empty when the key is missing or holds the sentinel.
   *
   * @throws RendezvousConnectionException if the store fails
   * @throws RendezvousStateException if the value is not base64
   */
  static Optional<byte[]> peek(Store store, String runId) {
    String key = RendezvousKeys.of(runId).state();
    byte[] value =
        call(
            () -> {
              // CHECK first: a GET of a missing key would block for the store's timeout.
              if (!store.check(List.of(key))) {
                return NULL_SENTINEL;
              }
              return store.get(key);
            });
    return decode(value);
  }

  private static Optional<byte[]> decode(byte[] value) {
    if (Arrays.equals(value, NULL_SENTINEL)) {
      return Optional.empty();
    }
    try {
      return Optional.of(Base64.getDecoder().decode(value));
    } catch (IllegalArgumentException e) {
      throw new RendezvousStateException(
          "The state object is corrupt. See inner exception for details.", e);
    }
  }

  private static <T> T call(java.util.function.Supplier<T> op) {
    try {
      return op.get();
    } catch (StoreException e) {
      throw new RendezvousConnectionException(CONNECTION_FAILED, e);
    }
  }

  /** The epoch to pair with a state about to be read: a lower bound of the current one. */
  private long knownEpoch() {
    return signal == null ? 0 : signal.knownEpoch();
  }

  /**
   * Sets (or deletes) {@code rdzv/v1/<E(run_id)>/node/<E(node)>}; only for a node that signals (a
   * backend in PyTorch's behaviour writes nothing of rdzv's own).
   */
  @Override
  public void publishNote(NodeDescriptor node, NodeNote note) {
    if (signal == null) {
      return;
    }
    String noteKey = keys.own(RendezvousKeys.Own.NODE, node.toString());
    try {
      if (note == null) {
        store.deleteKey(noteKey);
      } else {
        store.set(noteKey, note.encode().getBytes(StandardCharsets.UTF_8));
      }
    } catch (StoreException e) {
      // Only a hint for status tools.
    }
  }

  /** Notes of at most this many nodes are read, one CHECK each. */
  static final int MAX_NOTES = 64;

  /**
   * Reads the notes of {@code nodes} (the first {@link #MAX_NOTES}) without writing anything: CHECK
   * each key (a GET of a missing key would block), then one MULTI_GET.
   *
   * @throws StoreException if the store fails
   */
  static Map<NodeDescriptor, NodeNote> readNotes(
      Store store, String runId, Collection<NodeDescriptor> nodes) {
    RendezvousKeys keys = RendezvousKeys.of(runId);
    List<NodeDescriptor> present = new ArrayList<>();
    List<String> presentKeys = new ArrayList<>();
    for (NodeDescriptor n : nodes) {
      if (present.size() >= MAX_NOTES) {
        break;
      }
      String k = keys.own(RendezvousKeys.Own.NODE, n.toString());
      if (store.check(List.of(k))) {
        present.add(n);
        presentKeys.add(k);
      }
    }
    Map<NodeDescriptor, NodeNote> notes = new HashMap<>();
    if (presentKeys.isEmpty()) {
      return notes;
    }
    List<byte[]> values = store.multiGet(presentKeys);
    for (int i = 0; i < present.size(); i++) {
      NodeDescriptor n = present.get(i);
      NodeNote.parse(new String(values.get(i), StandardCharsets.UTF_8))
          .ifPresent(note -> notes.put(n, note));
    }
    return notes;
  }

  @Override
  public Turn awaitTurn(Duration timeout, NodeDescriptor joining) throws InterruptedException {
    return turns == null ? Turn.NONE : turns.awaitTurn(timeout, joining);
  }

  @Override
  public boolean awaitChange(Object token, Duration timeout) throws InterruptedException {
    long epoch = token instanceof Token t ? t.epoch() : knownEpoch();
    if (signal == null) {
      Thread.sleep(timeout);
      return false;
    }
    return signal.await(epoch, timeout);
  }

  /** Stops the change signal's watch and closes its wait connection; the store stays open. */
  @Override
  public void close() {
    if (signal != null) {
      signal.close();
    }
  }
}
