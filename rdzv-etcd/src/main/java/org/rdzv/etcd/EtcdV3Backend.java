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
 * 7200 s so an abandoned state disappears like the v2 TTL. {@link #awaitChange} is a v3 watch from
 * the next revision.
 */
final class EtcdV3Backend implements RendezvousBackend {
  private final EtcdV3Session session;
  private final ByteSequence key;
  private final String keyText;

  EtcdV3Backend(EtcdV3Session session, String runId, String keyPrefix) {
    if (runId == null || runId.isEmpty()) {
      throw new IllegalArgumentException("The run id must be a non-empty string.");
    }
    this.session = session;
    this.keyText = keyPrefix == null || keyPrefix.isEmpty() ? runId : keyPrefix + "/" + runId;
    this.key = ByteSequence.from(keyText, StandardCharsets.UTF_8);
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
        return commit(fence, value);
      } catch (EtcdV3Session.Unavailable e) {
        // A lease that vanished (revoked by hand, or the clock jumped) is replaced once.
        if (String.valueOf(e.getMessage()).contains("lease not found")) {
          session.resetLease();
          return commit(fence, value);
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

  private TxnResponse commit(Cmp fence, ByteSequence value) {
    PutOption put = PutOption.builder().withLeaseId(session.lease()).build();
    return session.await(
        session.client().getKVClient().txn()
            .If(fence)
            .Then(Op.put(key, value, put))
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
    return session.awaitAny(List.of(key), from, timeout);
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
