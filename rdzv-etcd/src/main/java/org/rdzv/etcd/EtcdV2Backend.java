package org.rdzv.etcd;

import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousException;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.dynamic.NodeNote;
import org.rdzv.dynamic.RendezvousBackend;
import org.rdzv.dynamic.RendezvousKeys;

/**
 * PyTorch's {@code EtcdRendezvousBackend} ({@code etcd-v2}): the state as base64 text under {@code
 * <prefix>/<run_id>} with a TTL of 7200 s sent on every write, fenced by etcd's {@code
 * modifiedIndex} ({@code prevIndex} compare-and-set; {@code prevExist=false} for the first write).
 *
 * <p>Unlike PyTorch, {@link #awaitChange} waits with a v2 watch on a signal key that significant
 * writes touch, so Java nodes see each other's significant writes at once instead of re-reading
 * every second (writes by PyTorch nodes are seen at the next poll, within a second); and a write
 * fenced by an index whose key has expired counts as a lost compare-and-set (PyTorch reports a
 * connection error).
 */
final class EtcdV2Backend implements RendezvousBackend {
  static final int DEFAULT_TTL_SECONDS = 7200;

  private final EtcdV2Client client;
  private final String key;
  private final String signalKey;
  private final String turnDir;
  private final String noteDir;
  private final int ttlSeconds;

  EtcdV2Backend(EtcdV2Client client, String runId, String keyPrefix, Integer ttlSeconds) {
    if (runId == null || runId.isEmpty()) {
      throw new IllegalArgumentException("The run id must be a non-empty string.");
    }
    RendezvousKeys keys = RendezvousKeys.of(runId);
    this.client = client;
    this.key = keyPrefix == null || keyPrefix.isEmpty() ? runId : keyPrefix + "/" + runId;
    // rdzv's own keys: outside PyTorch's directories and injective across run ids, so another
    // run id can never name them (RendezvousKeys).
    this.signalKey = keys.etcdOwn(RendezvousKeys.Own.SIGNAL);
    this.turnDir = keys.etcdOwnDirectory(RendezvousKeys.Own.TURN_QUEUE);
    this.noteDir = keys.etcdOwnDirectory(RendezvousKeys.Own.NODE);
    this.ttlSeconds = ttlSeconds != null && ttlSeconds > 0 ? ttlSeconds : DEFAULT_TTL_SECONDS;
    pathProblem(runId)
        .ifPresent(
            why ->
                System.getLogger(EtcdV2Backend.class.getName())
                    .log(System.Logger.Level.WARNING, "rendezvous ''{0}'': {1}", runId, why));
  }

  /**
   * Why PyTorch's etcd-v2 state key of {@code runId} can meet another run's, if it can: etcd v2
   * keys are paths, so {@code <prefix>/a/b} lives inside the directory of run {@code a} (one of the
   * two writes fails with "Not a file" or "Not a directory"), and etcd cleans {@code //}, {@code .}
   * and {@code ..} segments and a trailing {@code /} away ({@code a//b} is {@code a/b}).
   */
  static Optional<String> pathProblem(String runId) {
    if (runId.indexOf('/') < 0 && !runId.equals(".") && !runId.equals("..")) {
      return Optional.empty();
    }
    return Optional.of(
        "etcd v2 keys are paths, and the state key "
            + EtcdRendezvous.V2_STATE_PREFIX
            + "/"
            + runId
            + " contains a '/' or a '.'/'..' segment: it can fall inside another run's key or be"
            + " cleaned into one (PyTorch's key scheme); use a run id without '/'");
  }

  @Override
  public String name() {
    return "etcd-v2";
  }

  /** The etcd key of the state. */
  String key() {
    return key;
  }

  @Override
  public Optional<State> getState() {
    try {
      EtcdV2Client.Node node = client.get(key, false).node();
      return Optional.of(new State(decode(node.value()), node.modifiedIndex()));
    } catch (EtcdV2Exception e) {
      if (e.keyNotFound()) {
        return Optional.empty();
      }
      throw translate(e);
    }
  }

  @Override
  public Optional<SetResult> setState(byte[] state, Object token) {
    return setState(state, token, true);
  }

  /**
   * Writes the state; after a {@code significant} write also touches the signal key {@code
   * /rdzv/v1/<E(run_id)>/signal} (outside PyTorch's directories, TTL 7200 s), which is what {@link
   * #awaitChange} watches, so joins below the minimum and heartbeats wake nobody.
   */
  @Override
  public Optional<SetResult> setState(byte[] state, Object token, boolean significant) {
    Long index = null;
    if (token != null) {
      try {
        index = Long.parseLong(token.toString());
      } catch (NumberFormatException e) {
        return readAfterLoss();
      }
    }
    String value = Base64.getEncoder().encodeToString(state);
    try {
      EtcdV2Client.Result result =
          client.put(
              key,
              EtcdV2Client.form(
                  "value",
                  value,
                  "ttl",
                  Integer.toString(ttlSeconds),
                  "prevIndex",
                  index != null && index != 0 ? index.toString() : null,
                  "prevExist",
                  index != null && index != 0 ? null : "false"));
      if (significant) {
        signal(result.node().modifiedIndex());
      }
      return Optional.of(
          new SetResult(decode(result.node().value()), result.node().modifiedIndex(), true));
    } catch (EtcdV2Exception e) {
      if (e.compareFailed() || e.keyNotFound()) {
        return readAfterLoss();
      }
      if (e.kind() == EtcdV2Exception.Kind.UNAVAILABLE) {
        // The write may or may not have been applied (say the member lost its leader and the
        // proposal timed out). Reading the state back, from any member, settles it: the rendezvous
        // treats it like a lost compare-and-set and re-evaluates what it sees, our write included.
        return readAfterLoss();
      }
      throw translate(e);
    }
  }

  /** Touches the signal key; its value is the index of the state write it announces. */
  private void signal(long stateIndex) {
    try {
      client.put(
          signalKey,
          EtcdV2Client.form(
              "value", Long.toString(stateIndex), "ttl", Integer.toString(ttlSeconds)));
    } catch (EtcdV2Exception e) {
      // Waiters fall back to re-reading within their poll interval; the state write stands.
      System.getLogger(EtcdV2Backend.class.getName())
          .log(System.Logger.Level.DEBUG, "could not signal a state change: {0}", e.getMessage());
    }
  }

  /** {@code /rdzv/v1/<E(run_id)>/node/<E(node)>}, with the state's TTL; best effort. */
  @Override
  public void publishNote(org.rdzv.dynamic.NodeDescriptor node, NodeNote note) {
    String key = noteDir + "/" + RendezvousKeys.encodeRunId(node.toString());
    try {
      if (note == null) {
        client.delete(key, Map.of());
      } else {
        client.put(
            key, EtcdV2Client.form("value", note.encode(), "ttl", Integer.toString(ttlSeconds)));
      }
    } catch (EtcdV2Exception e) {
      // Only a hint for status tools.
    }
  }

  /**
   * The notes of every node of {@code runId}: one listing of its note directory.
   *
   * @throws RendezvousException if etcd cannot be reached
   */
  static Map<org.rdzv.dynamic.NodeDescriptor, NodeNote> readNotes(
      EtcdV2Client client, String runId) {
    String dir = RendezvousKeys.of(runId).etcdOwnDirectory(RendezvousKeys.Own.NODE);
    Map<org.rdzv.dynamic.NodeDescriptor, NodeNote> notes = new java.util.HashMap<>();
    EtcdV2Client.Node listing;
    try {
      listing = client.get(dir, false).node();
    } catch (EtcdV2Exception e) {
      if (e.keyNotFound()) {
        return notes;
      }
      throw translate(e);
    }
    for (EtcdV2Client.Node child :
        listing.nodes() == null ? List.<EtcdV2Client.Node>of() : listing.nodes()) {
      String name = child.key().substring(child.key().lastIndexOf('/') + 1);
      RendezvousKeys.decodeRunId(name)
          .flatMap(org.rdzv.dynamic.NodeDescriptor::parse)
          .ifPresent(
              n ->
                  NodeNote.parse(child.value() == null ? "" : child.value())
                      .ifPresent(note -> notes.put(n, note)));
    }
    return notes;
  }

  private Optional<SetResult> readAfterLoss() {
    return getState().map(s -> new SetResult(s.state(), s.token(), false));
  }

  /**
   * Watches the state key from the index after {@code token}; with no token, from the index of a
   * fresh read (and returns at once if a state appeared meanwhile).
   */
  @Override
  public boolean awaitChange(Object token, Duration timeout) throws InterruptedException {
    long waitIndex;
    try {
      if (token != null) {
        waitIndex = Long.parseLong(token.toString()) + 1;
      } else {
        try {
          client.get(key, false);
          return true;
        } catch (EtcdV2Exception e) {
          if (!e.keyNotFound()) {
            throw e;
          }
          waitIndex = e.etcdIndex() + 1;
        }
      }
      if (token == null) {
        return client.watch(key, waitIndex, false, timeout).isPresent();
      }
      // Each signal carries the index of the state write it announces: one for a state newer
      // than the token is a significant write this node has not seen; older ones are skipped.
      long token0 = waitIndex - 1;
      long deadline = System.nanoTime() + timeout.toNanos();
      long from = waitIndex;
      while (true) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        Optional<EtcdV2Client.Result> event =
            client.watch(signalKey, from, false, Duration.ofNanos(left));
        if (event.isEmpty()) {
          return false;
        }
        EtcdV2Client.Node node = event.get().node();
        long announced;
        try {
          announced = Long.parseLong(node.value() == null ? "" : node.value().strip());
        } catch (NumberFormatException e) {
          return true;
        }
        if (announced > token0) {
          return true;
        }
        from = node.modifiedIndex() + 1;
      }
    } catch (NumberFormatException e) {
      return true;
    } catch (EtcdV2Exception e) {
      if (e.is(EtcdV2Exception.EVENT_INDEX_CLEARED)) {
        return true;
      }
      if (e.kind() == EtcdV2Exception.Kind.INTERRUPTED) {
        Thread.interrupted();
        throw new InterruptedException("interrupted while watching " + key);
      }
      throw translate(e);
    }
  }

  /**
   * A turn among Java writers: an in-order key under {@code /rdzv/v1/<E(run_id)>/turn_queue} (TTL
   * 60 s, so a dead holder's turn lapses) whose place in the sorted listing is this node's place in
   * the queue; the node waits for the key just before it to be deleted. Closing the turn deletes
   * the key. If the queue does not move for {@code timeout}, the node goes ahead: its write is
   * still fenced by its token.
   */
  @Override
  public Turn awaitTurn(Duration timeout, org.rdzv.dynamic.NodeDescriptor joining)
      throws InterruptedException {
    String mine;
    try {
      mine =
          client
              .post(
                  turnDir,
                  EtcdV2Client.form(
                      "value", joining == null ? "" : joining.toString(), "ttl", "60"))
              .node()
              .key();
      long before = -1;
      while (true) {
        EtcdV2Client.Result listing;
        try {
          listing = client.listSorted(turnDir);
        } catch (EtcdV2Exception e) {
          if (e.keyNotFound()) {
            break;
          }
          throw e;
        }
        String predecessor = null;
        long ahead = 0;
        for (EtcdV2Client.Node child : listing.node().nodes()) {
          if (child.key().compareTo(mine) < 0) {
            predecessor = child.key();
            ahead++;
          }
        }
        if (predecessor == null || (before >= 0 && ahead >= before)) {
          break; // our turn, or the queue stood still for a whole timeout
        }
        before = ahead;
        if (awaitDeleted(predecessor, listing.etcdIndex() + 1, timeout)) {
          before = -1;
        }
      }
    } catch (EtcdV2Exception e) {
      if (e.kind() == EtcdV2Exception.Kind.INTERRUPTED) {
        Thread.interrupted();
        throw new InterruptedException("interrupted while waiting for a write turn");
      }
      return Turn.NONE; // turns are an optimization; the write is still fenced
    }
    // No batched admissions here (Turn#waitingJoiners): measured on etcd v2, letting a holder
    // admit the joiners queued behind it made 256-node rounds about twice as slow (the large
    // sorted listings and the chain of deletions cost more than the writes they save).
    boolean[] closed = new boolean[1];
    return () -> {
      if (!closed[0]) {
        closed[0] = true;
        deleteQuietly(mine);
      }
    };
  }

  private void deleteQuietly(String key) {
    try {
      client.delete(key, Map.of());
    } catch (EtcdV2Exception e) {
      // already gone (expired), or etcd unreachable: the TTL cleans up
    }
  }

  private boolean awaitDeleted(String key, long fromIndex, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    long from = fromIndex;
    while (true) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        return false;
      }
      try {
        Optional<EtcdV2Client.Result> event =
            client.watch(key, from, false, Duration.ofNanos(left));
        if (event.isEmpty()) {
          return false;
        }
        String action = event.get().action();
        if (action.equals("delete")
            || action.equals("expire")
            || action.equals("compareAndDelete")) {
          return true;
        }
        from = event.get().node().modifiedIndex() + 1;
      } catch (EtcdV2Exception e) {
        if (e.is(EtcdV2Exception.EVENT_INDEX_CLEARED)) {
          return true;
        }
        throw e;
      }
    }
  }

  private static byte[] decode(String value) {
    try {
      return Base64.getDecoder().decode(value == null ? "" : value);
    } catch (IllegalArgumentException e) {
      throw new RendezvousStateException(
          "The state object is corrupt. See inner exception for details.", e);
    }
  }

  static RendezvousException translate(EtcdV2Exception e) {
    return switch (e.kind()) {
      case INTERRUPTED -> new RendezvousException("Interrupted while talking to etcd.", e);
      case UNAVAILABLE -> new RendezvousConnectionException(e.getMessage(), e);
      case ERROR, PROTOCOL ->
          new RendezvousConnectionException(
              "The connection to etcd has failed: " + e.getMessage(), e);
    };
  }
}
