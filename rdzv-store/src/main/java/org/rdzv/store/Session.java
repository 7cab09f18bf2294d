package org.rdzv.store;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The server-side state of one connection that {@link StoreState} needs: where its replies go, its
 * pending waits and its watched keys. Used only on the server's event-loop thread.
 */
class Session {
  /** A pending WAIT: the number of its keys still missing. */
  static final class Waiter {
    final Session session;
    final List<String> keys = new ArrayList<>(1);
    int missing;

    Waiter(Session session) {
      this.session = session;
    }
  }

  final OutputQueue out = new OutputQueue();
  final List<Waiter> waiters = new ArrayList<>(0);
  final Set<String> watchedKeys = new HashSet<>(0);
  Family family;

  /** Whether output was queued and not yet handed to the writer. */
  boolean dirty;

  Session(Family family) {
    this.family = family;
  }

  /** Called after output was queued for this session by any request. */
  void outputQueued() {
    dirty = true;
  }

  /** A short description for logs. */
  String describe() {
    return "session";
  }
}
