package org.rdzv.dynamic;

import java.lang.System.Logger.Level;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.rdzv.api.RendezvousStateException;

/**
 * This node's copy of the shared state, synced through a {@link RendezvousBackend}: PyTorch's
 * {@code _BackendRendezvousStateHolder}. Writes when dirty, else reads (at most once per second
 * unless a change was signalled), then drops nodes whose heartbeat expired. Not thread-safe: the
 * handler's lock guards it.
 */
final class StateHolder {
  private static final System.Logger LOG = System.getLogger(StateHolder.class.getName());
  private static final long CACHE_NANOS = 1_000_000_000L;

  private final RendezvousBackend backend;
  private final RendezvousSettings settings;
  private final Clock clock;
  private MutableState state = new MutableState();
  private Object token;
  private boolean dirty;
  private boolean synced;
  private long lastSyncNanos;
  private boolean changeSignalled;
  private List<NodeDescriptor> deadNodes = List.of();

  /** The state as synced (before local changes), to tell significant writes from the rest. */
  private MutableState base = new MutableState();

  StateHolder(RendezvousBackend backend, RendezvousSettings settings, Clock clock) {
    this.backend = backend;
    this.settings = settings;
    this.clock = clock;
  }

  MutableState state() {
    return state;
  }

  /**
   * The dialect to write: that of the stored state; for a state that tells only its family (no
   * nodes, no timestamps) the configured dialect if pinned, else one of that family; without a
   * state the configured (or default) one.
   */
  StateDialect dialect() {
    if (state.dialect != null && state.dialectProven) {
      return state.dialect;
    }
    if (settings.dialectPinned() || state.twoX == null) {
      return settings.dialect();
    }
    if (!state.twoX) {
      return StateDialect.V1_13;
    }
    return settings.dialect() == StateDialect.V1_13 ? StateDialect.V2_6 : settings.dialect();
  }

  /**
   * Refuses a stored state of another dialect than the one configuration pinned: the PyTorch nodes
   * this node expects could not read the state, nor the nodes that wrote it a state of ours.
   *
   * @throws RendezvousStateException naming both dialects and what to set
   */
  void checkDialect() {
    StateDialect stored = state.dialect;
    if (!settings.dialectPinned()
        || !state.dialectProven
        || stored == null
        || stored == settings.dialect()) {
      return;
    }
    throw new RendezvousStateException(
        "The rendezvous '"
            + settings.runId()
            + "' holds a state in the "
            + stored.describe()
            + " dialect, but this node is configured for the "
            + settings.dialect().describe()
            + " dialect ("
            + settings.dialectOrigin()
            + "); the nodes of one rendezvous must share a dialect: set state_dialect="
            + stored.label()
            + " to join it, or use another run id.");
  }

  void markDirty() {
    dirty = true;
  }

  /** Nodes the last sync dropped for lack of heartbeats. */
  List<NodeDescriptor> deadNodes() {
    return deadNodes;
  }

  /**
   * Writes the local state if dirty, else reads the stored one (unless read less than a second ago
   * and no change was signalled). Returns whether a write succeeded, or {@code null} if nothing was
   * written.
   */
  Boolean sync() {
    byte[] bytes = null;
    Object newToken = null;
    Boolean hasSet;
    if (dirty) {
      StateDialect dialect = dialect();
      MutableState toWrite = state;
      byte[] encoded = StateCodec.encode(toWrite, dialect);
      Optional<RendezvousBackend.SetResult> result =
          backend.setState(encoded, token, significant(base, toWrite));
      hasSet = false;
      if (result.isPresent()) {
        bytes = result.get().state();
        newToken = result.get().token();
        hasSet = result.get().written();
      }
      if (hasSet) {
        // Our own bytes: no need to decode them again.
        toWrite.dialect = dialect;
        toWrite.twoX = dialect != StateDialect.V1_13;
        toWrite.dialectProven = true;
        install(toWrite, newToken);
        return true;
      }
    } else {
      hasSet = null;
      long now = clock.nanoTime();
      if (synced && !changeSignalled && now - lastSyncNanos < CACHE_NANOS) {
        return null;
      }
      Optional<RendezvousBackend.State> result = backend.getState();
      if (result.isPresent()) {
        bytes = result.get().state();
        newToken = result.get().token();
      }
    }
    install(bytes == null ? new MutableState() : StateCodec.decode(bytes), newToken);
    return hasSet;
  }

  private void install(MutableState newState, Object newToken) {
    state = newState;
    base = newState.copy();
    token = newToken;
    dirty = false;
    synced = true;
    changeSignalled = false;
    lastSyncNanos = clock.nanoTime();
    sanitize();
  }

  /** Forces the next {@link #sync()} to read. */
  void invalidate() {
    changeSignalled = true;
  }

  RendezvousBackend.Turn awaitTurn(Duration timeout, NodeDescriptor joining)
      throws InterruptedException {
    return backend.awaitTurn(timeout, joining);
  }

  /** Whether every node in the state last synced is known to signal its changes. */
  boolean everyNodeSignals() {
    long nodes = state.participants.size() + state.waitList.size() + state.redundancyList.size();
    return nodes > 0 && backend.signallingNodes() >= nodes;
  }

  /** The fencing token of the state last synced. */
  Object token() {
    return token;
  }

  /**
   * Waits up to {@code timeout} for the stored state to change from the one {@code seen} fences;
   * touches no field, so the caller may release its lock meanwhile. Returns whether a change was
   * signalled; pass that to {@link #invalidate()} under the lock.
   */
  boolean awaitChange(Object seen, Duration timeout) throws InterruptedException {
    return backend.awaitChange(seen, timeout);
  }

  /**
   * Whether a write changes what waiting nodes decide: not a heartbeat, not one more participant
   * below the minimum.
   */
  static boolean significant(MutableState before, MutableState after) {
    return before.round != after.round
        || before.complete != after.complete
        || before.closed != after.closed
        || !java.util.Objects.equals(before.deadline, after.deadline)
        || !before.waitList.equals(after.waitList)
        || !before.redundancyList.equals(after.redundancyList)
        || !after.participants.keySet().containsAll(before.participants.keySet());
  }

  private void sanitize() {
    MutableState s = state;
    Instant expire = clock.wallNow().minus(settings.expiry());
    List<NodeDescriptor> dead = new ArrayList<>();
    s.lastHeartbeats.forEach(
        (node, last) -> {
          if (last.isBefore(expire)) {
            dead.add(node);
          }
        });
    deadNodes = dead;
    if (dead.isEmpty()) {
      return;
    }
    boolean participantRemoved = false;
    for (NodeDescriptor node : dead) {
      s.lastHeartbeats.remove(node);
      participantRemoved |= s.participants.remove(node) != null;
      s.waitList.remove(node);
      s.redundancyList.remove(node);
    }
    if (participantRemoved) {
      removeParticipantEpilogue(s, settings);
    }
    LOG.log(
        Level.DEBUG,
        "rendezvous ''{0}'': dropped {1} for lack of heartbeats",
        settings.runId(),
        dead);
  }

  static void removeParticipantEpilogue(MutableState s, RendezvousSettings settings) {
    if (s.complete) {
      if (s.participants.isEmpty()) {
        s.complete = false;
        s.round++;
      }
    } else if (s.participants.size() < settings.minNodes()) {
      s.deadline = null;
    }
  }
}
