package org.rdzv.etcd;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.kv.TxnResponse;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.DeleteOption;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.PutOption;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.dynamic.NodeDescriptor;
import org.rdzv.dynamic.NodeNote;
import org.rdzv.dynamic.RendezvousBackend;
import org.rdzv.dynamic.RendezvousKeys;

/**
 * The dynamic rendezvous state on etcd's v3 API ({@code etcd-v3}, new in rdzv): the same base64
 * value as {@code etcd-v2} under the v3 key {@code <prefix>/<run_id>}, written by transactions
 * fenced by the key's mod revision (create revision 0 for the first write), attached to a lease of
 * 7200 s so an abandoned state disappears like the v2 TTL. {@link #awaitChange} is a v3 watch, from
 * the revision after the token, of a signal key that significant writes touch.
 */
final class EtcdV3Backend implements RendezvousBackend {
  private final EtcdV3Session session;
  private final ByteSequence key;
  private final ByteSequence signal;
  private final String turnPrefix;
  private final String notePrefix;
  private final String keyText;

  /**
   * The turn key this node holds, deleted by its next successful state write (passing the turn).
   */
  private volatile ByteSequence heldTurn;

  EtcdV3Backend(EtcdV3Session session, String runId, String keyPrefix) {
    if (runId == null || runId.isEmpty()) {
      throw new IllegalArgumentException("The run id must be a non-empty string.");
    }
    RendezvousKeys keys = RendezvousKeys.of(runId);
    this.session = session;
    this.keyText = keyPrefix == null || keyPrefix.isEmpty() ? runId : keyPrefix + "/" + runId;
    this.key = ByteSequence.from(keyText, StandardCharsets.UTF_8);
    // rdzv's own keys: outside PyTorch's keys and injective across run ids; the turn prefix of one
    // run is no prefix of another's (a run id "a/b" once listed its queue inside run "a"'s).
    this.signal =
        ByteSequence.from(keys.etcdOwn(RendezvousKeys.Own.SIGNAL), StandardCharsets.UTF_8);
    this.turnPrefix = keys.etcdOwnDirectory(RendezvousKeys.Own.TURN_QUEUE) + "/";
    this.notePrefix = keys.etcdOwnDirectory(RendezvousKeys.Own.NODE) + "/";
  }

  @Override
  public String name() {
    return "etcd-v3";
  }

  String key() {
    return keyText;
  }

  @Override
  public Optional<State> getState() {
    GetResponse response = call(() -> session.await(session.client().getKVClient().get(key)));
    return response.getKvs().stream()
        .findFirst()
        .map(kv -> new State(decode(kv), kv.getModRevision()));
  }

  @Override
  public Optional<SetResult> setState(byte[] state, Object token) {
    return setState(state, token, true);
  }

  /**
   * Writes the state; a {@code significant} write also touches the signal key {@code
   * /rdzv/v1/<E(run_id)>/signal} in the same transaction, which is what {@link #awaitChange}
   * watches. Joins below the minimum and heartbeats therefore wake nobody, and a round of a
   * thousand nodes costs a thousand wake-ups instead of a million.
   */
  @Override
  public Optional<SetResult> setState(byte[] state, Object token, boolean significant) {
    Cmp fence;
    if (token == null) {
      fence = new Cmp(key, Cmp.Op.EQUAL, CmpTarget.createRevision(0));
    } else {
      long revision;
      try {
        revision = Long.parseLong(token.toString());
      } catch (NumberFormatException e) {
        return getState().map(s -> new SetResult(s.state(), s.token(), false));
      }
      fence = new Cmp(key, Cmp.Op.EQUAL, CmpTarget.modRevision(revision));
    }
    ByteSequence value = ByteSequence.from(Base64.getEncoder().encode(state));
    ByteSequence passing = heldTurn;
    TxnResponse response =
        call(
            () -> {
              try {
                return commit(fence, value, significant, passing);
              } catch (EtcdV3Session.Unavailable e) {
                // A lease that vanished (revoked by hand, or the clock jumped) is replaced once.
                if (String.valueOf(e.getMessage()).contains("lease not found")) {
                  session.resetLease();
                  return commit(fence, value, significant, passing);
                }
                throw e;
              }
            });
    if (response.isSucceeded()) {
      if (passing != null && heldTurn == passing) {
        heldTurn = null;
      }
      return Optional.of(new SetResult(state, response.getHeader().getRevision(), true));
    }
    List<KeyValue> kvs = response.getGetResponses().get(0).getKvs();
    return kvs.stream()
        .findFirst()
        .map(kv -> new SetResult(decode(kv), kv.getModRevision(), false));
  }

  private TxnResponse commit(
      Cmp fence, ByteSequence value, boolean significant, ByteSequence turn) {
    PutOption put = PutOption.builder().withLeaseId(session.lease()).build();
    List<Op> ops = new java.util.ArrayList<>(3);
    ops.add(Op.put(key, value, put));
    if (significant) {
      ops.add(Op.put(signal, ByteSequence.EMPTY, put));
    }
    if (turn != null) {
      // Passing the turn in the same revision wakes the next writer as the state lands.
      ops.add(Op.delete(turn, DeleteOption.DEFAULT));
    }
    Op[] then = ops.toArray(Op[]::new);
    return session.await(
        session
            .client()
            .getKVClient()
            .txn()
            .If(fence)
            .Then(then)
            .Else(Op.get(key, GetOption.DEFAULT))
            .commit());
  }

  @Override
  public boolean awaitChange(Object token, Duration timeout) throws InterruptedException {
    long from;
    if (token == null) {
      GetResponse response = call(() -> session.await(session.client().getKVClient().get(key)));
      if (!response.getKvs().isEmpty()) {
        return true;
      }
      from = response.getHeader().getRevision() + 1;
    } else {
      try {
        from = Long.parseLong(token.toString()) + 1;
      } catch (NumberFormatException e) {
        return true;
      }
    }
    // Significant writes touch the signal key in the same revision as the state, so watching it
    // from the revision after the token sees exactly the significant writes this node missed.
    return session.awaitAny(List.of(signal), from, timeout);
  }

  /**
   * A turn among Java writers, etcd's lock recipe: this node puts a key under {@code
   * /rdzv/v1/<E(run_id)>/turn_queue/} (its create revision is its place in the queue; its value
   * names the node when it queues to join) and waits for the key just before it to be deleted. The
   * turn passes with this node's next successful state write (same transaction) or when it is
   * closed; closing also removes the keys of the joiners this node admitted in its write, which
   * wakes them and the first writer after them. If the queue does not move for {@code timeout}, the
   * node goes ahead: its write is still fenced by its token.
   */
  @Override
  public Turn awaitTurn(Duration timeout, NodeDescriptor joining) throws InterruptedException {
    ByteSequence mine =
        ByteSequence.from(turnPrefix + java.util.UUID.randomUUID(), StandardCharsets.UTF_8);
    ByteSequence prefix = ByteSequence.from(turnPrefix, StandardCharsets.UTF_8);
    long myRevision;
    try {
      ByteSequence value =
          joining == null
              ? ByteSequence.EMPTY
              : ByteSequence.from(joining.toString(), StandardCharsets.UTF_8);
      myRevision =
          session
              .await(
                  session
                      .client()
                      .getKVClient()
                      .put(mine, value, PutOption.builder().withLeaseId(session.lease()).build()))
              .getHeader()
              .getRevision();
      long before = -1;
      while (true) {
        GetResponse queue =
            session.await(
                session
                    .client()
                    .getKVClient()
                    .get(
                        prefix,
                        GetOption.builder()
                            .isPrefix(true)
                            .withKeysOnly(true)
                            .withMaxCreateRevision(myRevision - 1)
                            .withSortField(GetOption.SortTarget.CREATE)
                            .withSortOrder(GetOption.SortOrder.DESCEND)
                            .build()));
        long ahead = queue.getKvs().size();
        if (ahead == 0 || (before >= 0 && ahead >= before)) {
          break; // our turn, or the queue stood still for a whole timeout
        }
        before = ahead;
        ByteSequence predecessor = queue.getKvs().get(0).getKey();
        if (session.awaitDeleted(predecessor, queue.getHeader().getRevision() + 1, timeout)) {
          before = -1;
        }
      }
    } catch (EtcdV3Session.Unavailable e) {
      // Turns are an optimization: without one, the write is still fenced.
      return Turn.NONE;
    }
    heldTurn = mine;
    return new QueueTurn(mine, myRevision, prefix);
  }

  /** Joiners a turn holder may admit with its own write, at most. */
  private static final int MAX_BATCH = 256;

  private final class QueueTurn implements Turn {
    private final ByteSequence mine;
    private final long revision;
    private final ByteSequence prefix;
    private List<ByteSequence> joinerKeys = List.of();
    private List<NodeDescriptor> joiners;
    private int admitted;
    private boolean closed;

    QueueTurn(ByteSequence mine, long revision, ByteSequence prefix) {
      this.mine = mine;
      this.revision = revision;
      this.prefix = prefix;
    }

    /** The unbroken run of queued joiners right behind this node, oldest first. */
    @Override
    public List<NodeDescriptor> waitingJoiners() {
      if (joiners != null) {
        return joiners;
      }
      joiners = new java.util.ArrayList<>();
      List<ByteSequence> keys = new java.util.ArrayList<>();
      try {
        GetResponse behind =
            session.await(
                session
                    .client()
                    .getKVClient()
                    .get(
                        prefix,
                        GetOption.builder()
                            .isPrefix(true)
                            .withMinCreateRevision(revision + 1)
                            .withSortField(GetOption.SortTarget.CREATE)
                            .withSortOrder(GetOption.SortOrder.ASCEND)
                            .withLimit(MAX_BATCH)
                            .build()));
        for (KeyValue kv : behind.getKvs()) {
          var node = NodeDescriptor.parse(kv.getValue().toString(StandardCharsets.UTF_8));
          if (node.isEmpty()) {
            break; // a writer that is not joining: the batch stops there
          }
          joiners.add(node.get());
          keys.add(kv.getKey());
        }
      } catch (EtcdV3Session.Unavailable e) {
        joiners.clear();
        keys.clear();
      }
      joinerKeys = keys;
      return joiners;
    }

    @Override
    public void admitted(int count) {
      admitted = Math.max(0, Math.min(count, joinerKeys.size()));
    }

    @Override
    public void close() {
      if (closed) {
        return;
      }
      closed = true;
      if (heldTurn == mine) {
        heldTurn = null;
      }
      List<Op> deletes = new java.util.ArrayList<>(1 + admitted);
      deletes.add(Op.delete(mine, DeleteOption.DEFAULT));
      for (int i = 0; i < admitted; i++) {
        deletes.add(Op.delete(joinerKeys.get(i), DeleteOption.DEFAULT));
      }
      // Deleting twice is harmless; do not wait for it.
      session.client().getKVClient().txn().Then(deletes.toArray(Op[]::new)).commit();
    }
  }

  /** {@code /rdzv/v1/<E(run_id)>/node/<E(node)>} on the session's lease; best effort. */
  @Override
  public void publishNote(NodeDescriptor node, NodeNote note) {
    ByteSequence key =
        ByteSequence.from(
            notePrefix + RendezvousKeys.encodeRunId(node.toString()), StandardCharsets.UTF_8);
    try {
      if (note == null) {
        session.await(session.client().getKVClient().delete(key));
      } else {
        session.await(
            session
                .client()
                .getKVClient()
                .put(
                    key,
                    ByteSequence.from(note.encode(), StandardCharsets.UTF_8),
                    PutOption.builder().withLeaseId(session.lease()).build()));
      }
    } catch (EtcdV3Session.Unavailable e) {
      // Only a hint for status tools.
    }
  }

  /**
   * The notes of every node of {@code runId}: one prefix read.
   *
   * @throws RendezvousConnectionException if etcd cannot be reached
   */
  static Map<NodeDescriptor, NodeNote> readNotes(EtcdV3Session session, String runId) {
    String prefix = RendezvousKeys.of(runId).etcdOwnDirectory(RendezvousKeys.Own.NODE) + "/";
    GetResponse response =
        call(
            () ->
                session.await(
                    session
                        .client()
                        .getKVClient()
                        .get(
                            ByteSequence.from(prefix, StandardCharsets.UTF_8),
                            GetOption.builder().isPrefix(true).withLimit(4096).build())));
    Map<NodeDescriptor, NodeNote> notes = new HashMap<>();
    for (KeyValue kv : response.getKvs()) {
      String name = kv.getKey().toString(StandardCharsets.UTF_8).substring(prefix.length());
      RendezvousKeys.decodeRunId(name)
          .flatMap(NodeDescriptor::parse)
          .ifPresent(
              n ->
                  NodeNote.parse(kv.getValue().toString(StandardCharsets.UTF_8))
                      .ifPresent(note -> notes.put(n, note)));
    }
    return notes;
  }

  private static byte[] decode(KeyValue kv) {
    try {
      return Base64.getDecoder().decode(kv.getValue().getBytes());
    } catch (IllegalArgumentException e) {
      throw new RendezvousStateException(
          "The state object is corrupt. See inner exception for details.", e);
    }
  }

  private static <T> T call(java.util.function.Supplier<T> call) {
    try {
      return call.get();
    } catch (EtcdV3Session.Unavailable e) {
      throw new RendezvousConnectionException(e.getMessage(), e);
    }
  }
}
