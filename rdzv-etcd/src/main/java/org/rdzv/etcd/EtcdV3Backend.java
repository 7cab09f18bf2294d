package org.rdzv.etcd;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.kv.TxnResponse;
import io.etcd.jetcd.op.Cmp;
import io.etcd.jetcd.op.CmpTarget;
import io.etcd.jetcd.op.Op;
import io.etcd.jetcd.options.GetOption;
import io.etcd.jetcd.options.PutOption;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.dynamic.RendezvousBackend;

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
  private final String keyText;

  EtcdV3Backend(EtcdV3Session session, String runId, String keyPrefix) {
    if (runId == null || runId.isEmpty()) {
      throw new IllegalArgumentException("The run id must be a non-empty string.");
    }
    this.session = session;
    this.keyText = keyPrefix == null || keyPrefix.isEmpty() ? runId : keyPrefix + "/" + runId;
    this.key = ByteSequence.from(keyText, StandardCharsets.UTF_8);
    String prefix = keyPrefix == null || keyPrefix.isEmpty() ? "" : keyPrefix;
    this.signal = ByteSequence.from(prefix + "_signal/" + runId, StandardCharsets.UTF_8);
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
    return response.getKvs().stream().findFirst().map(kv -> new State(decode(kv), kv.getModRevision()));
  }

  @Override
  public Optional<SetResult> setState(byte[] state, Object token) {
    return setState(state, token, true);
  }

  /**
   * Writes the state; a {@code significant} write also touches the signal key {@code
   * <prefix>_signal/<run_id>} in the same transaction, which is what {@link #awaitChange}
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
    ByteSequence value =
        ByteSequence.from(Base64.getEncoder().encode(state));
    TxnResponse response = call(() -> {
      try {
        return commit(fence, value, significant);
      } catch (EtcdV3Session.Unavailable e) {
        // A lease that vanished (revoked by hand, or the clock jumped) is replaced once.
        if (String.valueOf(e.getMessage()).contains("lease not found")) {
          session.resetLease();
          return commit(fence, value, significant);
        }
        throw e;
      }
    });
    if (response.isSucceeded()) {
      return Optional.of(new SetResult(state, response.getHeader().getRevision(), true));
    }
    List<KeyValue> kvs = response.getGetResponses().get(0).getKvs();
    return kvs.stream().findFirst().map(kv -> new SetResult(decode(kv), kv.getModRevision(), false));
  }

  private TxnResponse commit(Cmp fence, ByteSequence value, boolean significant) {
    PutOption put = PutOption.builder().withLeaseId(session.lease()).build();
    Op[] then =
        significant
            ? new Op[] {Op.put(key, value, put), Op.put(signal, ByteSequence.EMPTY, put)}
            : new Op[] {Op.put(key, value, put)};
    return session.await(
        session.client().getKVClient().txn()
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
