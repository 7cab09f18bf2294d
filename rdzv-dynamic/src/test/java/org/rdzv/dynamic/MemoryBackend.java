package org.rdzv.dynamic;

import java.time.Duration;
import java.util.Optional;

/**
 * A backend holding the state in memory, fenced by a version number; waiting advances a fake clock.
 */
final class MemoryBackend implements RendezvousBackend {
  private final FakeClock clock;
  byte[] state;
  long version;
  int writes;
  int rejected;
  int reads;

  MemoryBackend(FakeClock clock) {
    this.clock = clock;
  }

  @Override
  public String name() {
    return "memory";
  }

  @Override
  public synchronized Optional<State> getState() {
    reads++;
    return state == null ? Optional.empty() : Optional.of(new State(state, version));
  }

  @Override
  public synchronized Optional<SetResult> setState(byte[] newState, Object token) {
    boolean matches = token == null ? state == null : token.equals(version);
    if (matches) {
      state = newState;
      version++;
      writes++;
    } else {
      rejected++;
    }
    return state == null ? Optional.empty() : Optional.of(new SetResult(state, version, matches));
  }

  @Override
  public boolean awaitChange(Object token, Duration timeout) {
    synchronized (this) {
      if (state != null && !Long.valueOf(version).equals(token)) {
        return true;
      }
    }
    clock.advance(timeout);
    return false;
  }

  /** Another node's write, done behind this node's back. */
  synchronized void put(MutableState s, StateDialect dialect) {
    state = StateCodec.encode(s, dialect);
    version++;
  }

  synchronized MutableState read() {
    return StateCodec.decode(state);
  }
}
