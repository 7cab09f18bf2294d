package org.rdzv.store;

import java.util.HashSet;
import java.util.Set;

/**
 * The server-side state of one connection that {@link StoreState} needs: where its replies go, its
 * pending waits, its watched keys and the multi-key request it is in the middle of. Used only on
 * the server's event-loop thread.
 */
class Session {
  final OutputQueue out = new OutputQueue();
  final Set<String> watchedKeys = new HashSet<>(0);
  Family family;

  /** The session's pending waits, a doubly linked list through {@link StoreState.Waiter}. */
  StoreState.Waiter firstWaiter;

  /** The CHECK, WAIT, MULTI_GET or MULTI_SET whose keys are arriving, or null. */
  Command multi;

  boolean multiAllPresent;
  long multiReplyBytes;
  StoreState.Waiter multiWaiter;

  /**
   * The pairs of the MULTI_SET whose pairs are arriving, applied together once the last one has (a
   * MULTI_SET cut short applies nothing, as PyTorch's servers, which read a whole request first);
   * their bytes are held from the memory budget meanwhile.
   */
  final java.util.ArrayList<String> pendingKeys = new java.util.ArrayList<>();

  final java.util.ArrayList<byte[]> pendingValues = new java.util.ArrayList<>();
  long pendingBytes;

  /** Whether output was queued and not yet handed to the writer. */
  boolean dirty;

  Session(Family family) {
    this.family = family;
  }

  /** Called after output was queued for this session by any request. */
  void outputQueued() {
    dirty = true;
  }

  /**
   * The session now holds {@code bytes} more of the server's memory (wait and watch registrations);
   * the server's connections count them against the memory budget.
   */
  void charge(long bytes) {}

  /** The session holds {@code bytes} less (a registration was released). */
  void release(long bytes) {}

  /** A short description for logs. */
  String describe() {
    return "session";
  }
}
