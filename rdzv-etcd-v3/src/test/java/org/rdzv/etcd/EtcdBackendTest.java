package org.rdzv.etcd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.rdzv.api.RendezvousClosedException;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.api.Store;
import org.rdzv.api.StoreTimeoutException;
import org.rdzv.dynamic.RendezvousBackend;
import org.rdzv.dynamic.StateSnapshot;
import org.rdzv.testing.EtcdProcess;
import org.rdzv.testing.Peers;

/** The etcd-v2 and etcd-v3 state backends, the v3 store, and Java-only rounds, on a real etcd. */
class EtcdBackendTest {
  private static EtcdProcess etcd;
  private static EtcdV3Session session;

  @BeforeAll
  static void startEtcd() {
    Peers.requireEtcdServer();
    etcd = EtcdProcess.start();
    session = EtcdV3Session.acquire(EtcdConnection.of(etcd.endpoint()));
  }

  @AfterAll
  static void stopEtcd() {
    if (session != null) {
      session.release();
    }
    if (etcd != null) {
      etcd.close();
    }
  }

  private static RendezvousBackend backend(String kind, String runId) {
    return kind.equals("v2")
        ? new EtcdV2Backend(
            EtcdV2Client.create(EtcdConnection.of(etcd.endpoint())),
            runId,
            EtcdRendezvous.V2_STATE_PREFIX,
            null)
        : new EtcdV3Backend(session, runId, EtcdRendezvous.V3_STATE_PREFIX);
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @ParameterizedTest
  @ValueSource(strings = {"v2", "v3"})
  void compareAndSetIsFencedByTheToken(String kind) {
    RendezvousBackend backend = backend(kind, "cas-" + kind);
    assertThat(backend.getState()).isEmpty();
    RendezvousBackend.SetResult first = backend.setState(bytes("one"), null).orElseThrow();
    assertThat(first.written()).isTrue();
    assertThat(first.state()).isEqualTo(bytes("one"));
    // A second "create" loses and sees the first state.
    RendezvousBackend.SetResult lost = backend.setState(bytes("two"), null).orElseThrow();
    assertThat(lost.written()).isFalse();
    assertThat(lost.state()).isEqualTo(bytes("one"));
    assertThat(lost.token()).isEqualTo(first.token());
    RendezvousBackend.SetResult second =
        backend.setState(bytes("two"), first.token()).orElseThrow();
    assertThat(second.written()).isTrue();
    // The old token no longer fences anything.
    RendezvousBackend.SetResult stale =
        backend.setState(bytes("three"), first.token()).orElseThrow();
    assertThat(stale.written()).isFalse();
    assertThat(stale.state()).isEqualTo(bytes("two"));
    assertThat(stale.token()).isEqualTo(second.token());
    // A token that is not a number only re-reads, as PyTorch does.
    assertThat(backend.setState(bytes("four"), "not-a-number").orElseThrow().written()).isFalse();
    RendezvousBackend.State state = backend.getState().orElseThrow();
    assertThat(state.state()).isEqualTo(bytes("two"));
    assertThat(state.token()).isEqualTo(second.token());
  }

  @Test
  void v2StateIsBase64UnderPyTorchsKeyWithATwoHourTtl() {
    RendezvousBackend backend = backend("v2", "ttl-run");
    backend.setState(new byte[] {(byte) 0x80, 4, (byte) 0x95}, null);
    EtcdV2Client.Node node =
        EtcdV2Client.create(EtcdConnection.of(etcd.endpoint()))
            .get("/torch/elastic/rendezvous/ttl-run", false)
            .node();
    assertThat(node.value())
        .isEqualTo(Base64.getEncoder().encodeToString(new byte[] {(byte) 0x80, 4, (byte) 0x95}));
    assertThat(node.ttl()).isBetween(7190L, 7200L);
    assertThat(backend.getState().orElseThrow().token()).isEqualTo(node.modifiedIndex());
  }

  @Test
  void v3StateIsBase64OnALeaseOfTwoHours() throws Exception {
    RendezvousBackend backend = backend("v3", "lease-run");
    backend.setState(bytes("state"), null);
    var kv =
        session
            .await(
                session
                    .client()
                    .getKVClient()
                    .get(EtcdV3Session.bytes("/torch/elastic/rendezvous/lease-run")))
            .getKvs()
            .get(0);
    assertThat(kv.getValue().toString(StandardCharsets.UTF_8)).isEqualTo("c3RhdGU=");
    assertThat(kv.getLease()).isNotZero();
    long ttl =
        session
            .await(
                session
                    .client()
                    .getLeaseClient()
                    .timeToLive(kv.getLease(), io.etcd.jetcd.options.LeaseOption.DEFAULT))
            .getTTL();
    assertThat(ttl).isBetween(7100L, 7200L);
  }

  @ParameterizedTest
  @ValueSource(strings = {"v2", "v3"})
  void awaitChangeWakesOnAWriteAndTimesOutOtherwise(String kind) throws Exception {
    RendezvousBackend backend = backend(kind, "wake-" + kind);
    Object token = backend.setState(bytes("a"), null).orElseThrow().token();
    long start = System.nanoTime();
    assertThat(backend.awaitChange(token, Duration.ofMillis(300))).isFalse();
    assertThat(System.nanoTime() - start)
        .isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(290));
    CompletableFuture<Boolean> waiter =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return backend.awaitChange(token, Duration.ofSeconds(30));
              } catch (InterruptedException e) {
                throw new IllegalStateException(e);
              }
            });
    backend.setState(bytes("b"), token);
    start = System.nanoTime();
    assertThat(waiter.get(20, TimeUnit.SECONDS)).isTrue();
    assertThat(System.nanoTime() - start).isLessThan(TimeUnit.SECONDS.toNanos(5));
    // A write that happened before the wait began is seen at once (the watch starts at token+1).
    assertThat(backend.awaitChange(token, Duration.ofSeconds(30))).isTrue();
  }

  @ParameterizedTest
  @ValueSource(strings = {"v2", "v3"})
  void onlySignificantWritesWakeWaiters(String kind) throws Exception {
    RendezvousBackend writer = backend(kind, "significant-" + kind);
    RendezvousBackend waiter = backend(kind, "significant-" + kind);
    Object token = writer.setState(bytes("a"), null).orElseThrow().token();
    Object seen = waiter.getState().orElseThrow().token();
    assertThat(seen).isEqualTo(token);
    // The waiter may be woken once by the signal of the write it already saw; then it waits.
    waiter.awaitChange(seen, Duration.ofMillis(200));
    Object quiet = writer.setState(bytes("b"), token, false).orElseThrow().token();
    assertThat(waiter.awaitChange(seen, Duration.ofMillis(300)))
        .as("a heartbeat wakes nobody")
        .isFalse();
    writer.setState(bytes("c"), quiet, true);
    assertThat(waiter.awaitChange(seen, Duration.ofSeconds(10))).isTrue();
  }

  @ParameterizedTest
  @ValueSource(strings = {"v2", "v3"})
  void awaitChangeWithoutStateWakesWhenTheFirstStateIsWritten(String kind) throws Exception {
    RendezvousBackend backend = backend(kind, "first-" + kind);
    CompletableFuture<Boolean> waiter =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return backend.awaitChange(null, Duration.ofSeconds(30));
              } catch (InterruptedException e) {
                throw new IllegalStateException(e);
              }
            });
    backend.setState(bytes("x"), null);
    assertThat(waiter.get(20, TimeUnit.SECONDS)).isTrue();
  }

  @ParameterizedTest
  @ValueSource(strings = {"v2", "v3"})
  void writeTurnsAreHandedOutInQueueOrder(String kind) throws Exception {
    RendezvousBackend first = backend(kind, "turns-" + kind);
    RendezvousBackend second = backend(kind, "turns-" + kind);
    RendezvousBackend.Turn turn = first.awaitTurn(Duration.ofSeconds(10), null);
    CompletableFuture<RendezvousBackend.Turn> next =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return second.awaitTurn(Duration.ofSeconds(10), null);
              } catch (InterruptedException e) {
                throw new IllegalStateException(e);
              }
            });
    // The second waits while the first holds its turn...
    assertThatThrownBy(() -> next.get(500, TimeUnit.MILLISECONDS))
        .isInstanceOf(java.util.concurrent.TimeoutException.class);
    // ...and gets it once the first passes it on.
    long passed = System.nanoTime();
    turn.close();
    RendezvousBackend.Turn secondTurn = next.get(5, TimeUnit.SECONDS);
    assertThat(System.nanoTime() - passed).isLessThan(TimeUnit.SECONDS.toNanos(3));
    secondTurn.close();
    // A queue that does not move for the timeout lets the waiter go ahead.
    RendezvousBackend.Turn held = first.awaitTurn(Duration.ofSeconds(10), null);
    long start = System.nanoTime();
    RendezvousBackend.Turn anyway = second.awaitTurn(Duration.ofMillis(300), null);
    assertThat(System.nanoTime() - start)
        .isBetween(TimeUnit.MILLISECONDS.toNanos(250), TimeUnit.SECONDS.toNanos(5));
    anyway.close();
    held.close();
  }

  @Test
  void v3StoreOperations() throws Exception {
    try (Store store =
        EtcdV3Rendezvous.v3Store(
            EtcdConnection.of(etcd.endpoint()), "/t/v3store", Duration.ofSeconds(20))) {
      store.set("k", "v");
      assertThat(store.getString("k")).isEqualTo("v");
      assertThat(store.add("n", 3)).isEqualTo(3);
      assertThat(store.add("n", -1)).isEqualTo(2);
      assertThat(store.compareSet("c", bytes("x"), bytes("y"))).isEqualTo(bytes("x"));
      assertThat(store.compareSet("c", new byte[0], bytes("y"))).isEqualTo(bytes("y"));
      assertThat(store.compareSet("c", bytes("z"), bytes("w"))).isEqualTo(bytes("y"));
      assertThat(store.compareSet("c", bytes("y"), bytes("w"))).isEqualTo(bytes("w"));
      store.append("log", bytes("ab"));
      store.append("log", bytes("cd"));
      assertThat(store.getString("log")).isEqualTo("abcd");
      assertThat(store.numKeys()).isEqualTo(4);
      assertThat(store.deleteKey("log")).isTrue();
      assertThat(store.deleteKey("log")).isFalse();
      assertThat(store.check(List.of("k", "n"))).isTrue();
      assertThat(store.check(List.of("k", "log"))).isFalse();
      assertThatThrownBy(() -> store.await(List.of("never"), Duration.ofMillis(200)))
          .isInstanceOf(StoreTimeoutException.class);
      CompletableFuture<List<byte[]>> waiter =
          CompletableFuture.supplyAsync(() -> store.multiGet(List.of("p", "q")));
      store.multiSet(List.of("p", "q"), List.of(bytes("1"), bytes("2")));
      List<byte[]> values = waiter.get(10, TimeUnit.SECONDS);
      assertThat(values.get(0)).isEqualTo(bytes("1"));
      assertThat(values.get(1)).isEqualTo(bytes("2"));
      // The raw v3 key is the prefix plus the key, the value the bytes themselves.
      var kv =
          session
              .await(session.client().getKVClient().get(EtcdV3Session.bytes("/t/v3store/k")))
              .getKvs();
      assertThat(kv.get(0).getValue().toString(StandardCharsets.UTF_8)).isEqualTo("v");
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"etcd-v2", "etcd-v3", "etcd"})
  void javaNodesCompleteARoundThroughTheRegistryAndShutdownClosesIt(String backendName) {
    String runId = "java-" + backendName;
    Map<String, String> config =
        backendName.equals("etcd")
            ? Map.of("timeout", "30", "last_call_timeout", "1")
            : Map.of("join_timeout", "30", "last_call_timeout", "1");
    RendezvousParameters params =
        new RendezvousParameters(backendName, etcd.endpoint(), runId, 4, 4, config);
    try (JavaNodes nodes = JavaNodes.start(params, 4, true)) {
      List<JavaNodes.Outcome> outcomes = nodes.await(Duration.ofSeconds(60));
      assertThat(outcomes).extracting(o -> o.info().rank()).containsExactlyInAnyOrder(0, 1, 2, 3);
      assertThat(outcomes)
          .allSatisfy(
              o -> {
                assertThat(o.info().worldSize()).isEqualTo(4);
                assertThat(o.greetings()).containsExactly("hello0", "hello1", "hello2", "hello3");
              });
      if (!backendName.equals("etcd")) {
        StateSnapshot snapshot = EtcdRendezvous.readState(params).orElseThrow();
        assertThat(snapshot.complete()).isTrue();
        assertThat(snapshot.participants()).hasSize(4);
      } else {
        String state = EtcdRendezvous.legacyState(params).orElseThrow();
        assertThat(state)
            .startsWith(
                "{\"status\": \"final\", \"version\": \"1\", \"participants\": [0, 1, 2, 3], \"keep_alives\": [");
        assertThat(state).endsWith("], \"num_workers_waiting\": 0}");
      }
      RendezvousHandler first = nodes.handlers.get(0);
      assertThat(first.isClosed()).isFalse();
      assertThat(first.shutdown()).isTrue();
      RendezvousHandler late = RendezvousRegistry.handler(params);
      assertThat(late.isClosed()).isTrue();
      assertThatThrownBy(late::nextRendezvous).isInstanceOf(RendezvousClosedException.class);
      nodes.handlers.forEach(h -> closeQuietly(h));
      closeQuietly(late);
    }
  }

  static void closeQuietly(RendezvousHandler handler) {
    if (handler instanceof AutoCloseable closeable) {
      try {
        closeable.close();
      } catch (Exception e) {
        // test cleanup
      }
    }
  }

  @Test
  void readStateRefusesOtherBackends() {
    assertThatThrownBy(
            () ->
                EtcdRendezvous.readState(
                    new RendezvousParameters("c10d", etcd.endpoint(), "r", 1, 1)))
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(
            EtcdRendezvous.readState(
                new RendezvousParameters("etcd-v2", etcd.endpoint(), "none", 1, 1)))
        .isEqualTo(Optional.empty());
    assertThat(
            EtcdRendezvous.readState(
                new RendezvousParameters("etcd-v3", etcd.endpoint(), "none", 1, 1)))
        .isEqualTo(Optional.empty());
    assertThat(
            EtcdRendezvous.legacyState(
                new RendezvousParameters("etcd", etcd.endpoint(), "none", 1, 1)))
        .isEqualTo(Optional.empty());
  }
}
