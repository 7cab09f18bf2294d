package org.rdzv.etcd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.KeyValue;
import io.etcd.jetcd.options.GetOption;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.LongStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.dynamic.RendezvousSettings;
import org.rdzv.dynamic.spi.ScalableStore;
import org.rdzv.testing.Await;
import org.rdzv.testing.EtcdProcess;
import org.rdzv.testing.Peers;

/**
 * Every operation of {@link EtcdV3ScalableStore} against a real etcd 3.4, alone and under
 * contention: dense unique tickets, one sealer, one claimer, exact counters, waits that wake on a
 * later write and time out with null, batches beyond etcd's 128 operations and 1.5 MiB, the fence
 * of PyTorch's state, shared sessions and read-only handles.
 */
class EtcdV3ScalableStoreTest {
  private static final EtcdV3HandlerProvider PROVIDER = new EtcdV3HandlerProvider();
  private static final AtomicInteger RUNS = new AtomicInteger();
  private static EtcdProcess etcd;

  private final List<ScalableStore> opened = new ArrayList<>();
  private final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();

  @BeforeAll
  static void startEtcd() {
    Peers.requireEtcdServer();
    etcd = EtcdProcess.start();
  }

  @AfterAll
  static void stopEtcd() {
    if (etcd != null) {
      etcd.close();
    }
  }

  @AfterEach
  void close() {
    pool.shutdownNow();
    opened.forEach(ScalableStore::close);
  }

  private static RendezvousParameters params(String runId) {
    return new RendezvousParameters(
        "etcd-v3", etcd.endpoint(), runId, 1, 1, Map.of("protocol", "scalable"));
  }

  private EtcdV3ScalableStore open(String runId, boolean readOnly) {
    RendezvousParameters p = params(runId);
    EtcdV3ScalableStore store =
        (EtcdV3ScalableStore) PROVIDER.createScalableStore(p, RendezvousSettings.from(p), readOnly);
    opened.add(store);
    return store;
  }

  private EtcdV3ScalableStore open() {
    return open("scalable-" + RUNS.incrementAndGet(), false);
  }

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  private static String text(byte[] b) {
    return b == null ? null : new String(b, StandardCharsets.UTF_8);
  }

  /** Runs {@code count} tasks at once (released together) and returns their results in order. */
  private <T> List<T> together(int count, java.util.function.IntFunction<T> task) throws Exception {
    CountDownLatch go = new CountDownLatch(1);
    List<Future<T>> futures = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      int n = i;
      futures.add(
          pool.submit(
              (Callable<T>)
                  () -> {
                    go.await();
                    return task.apply(n);
                  }));
    }
    go.countDown();
    List<T> out = new ArrayList<>(count);
    for (Future<T> f : futures) {
      out.add(f.get(120, TimeUnit.SECONDS));
    }
    return out;
  }

  // ---- sequences

  @Test
  void ticketsStartAtOneAndCountUpWithoutGaps() {
    EtcdV3ScalableStore store = open();
    assertThat(store.tally("r0/joined")).isEqualTo(new ScalableStore.Tally(0, false));
    assertThat(store.enter("r0/joined")).isEqualTo(1);
    assertThat(store.enter("r0/joined")).isEqualTo(2);
    assertThat(store.enter("r0/joined")).isEqualTo(3);
    assertThat(store.enter("r1/joined")).isEqualTo(1);
    assertThat(store.tally("r0/joined")).isEqualTo(new ScalableStore.Tally(3, false));
  }

  @Test
  void twoThousandConcurrentEntersGetExactlyTheTicketsOneToTwoThousand() throws Exception {
    EtcdV3ScalableStore store = open();
    List<Long> tickets = together(2000, i -> store.enter("r0/joined"));
    assertThat(tickets)
        .containsExactlyInAnyOrderElementsOf(LongStream.rangeClosed(1, 2000).boxed().toList());
    assertThat(store.tally("r0/joined")).isEqualTo(new ScalableStore.Tally(2000, false));
  }

  @Test
  void sealingReturnsTheTicketsBeforeItOnceAndLaterEntersGetMinusOne() {
    EtcdV3ScalableStore store = open();
    store.enter("s");
    store.enter("s");
    assertThat(store.seal("s")).isEqualTo(2);
    assertThat(store.seal("s")).isEqualTo(-1);
    assertThat(store.enter("s")).isEqualTo(-1);
    assertThat(store.tally("s")).isEqualTo(new ScalableStore.Tally(2, true));
  }

  @Test
  void aSequenceNobodyEnteredSealsAtZero() {
    // etcd fails a value comparison on a missing key: the seal must still take the put.
    EtcdV3ScalableStore store = open();
    assertThat(store.seal("empty")).isZero();
    assertThat(store.tally("empty")).isEqualTo(new ScalableStore.Tally(0, true));
    assertThat(store.enter("empty")).isEqualTo(-1);
    assertThat(store.seal("empty")).isEqualTo(-1);
  }

  @Test
  void sealsRacingWithEntersHaveOneWinnerAndEveryTicketBelowItsCountIsUnique() throws Exception {
    EtcdV3ScalableStore store = open();
    int enters = 1500;
    int sealers = 8;
    List<long[]> results =
        together(
            enters + sealers,
            i -> {
              // The sealers are released among the enters, halfway.
              if (i >= enters / 2 && i < enters / 2 + sealers) {
                return new long[] {1, store.seal("race")};
              }
              return new long[] {0, store.enter("race")};
            });
    List<Long> seals = results.stream().filter(r -> r[0] == 1).map(r -> r[1]).toList();
    List<Long> tickets =
        results.stream().filter(r -> r[0] == 0 && r[1] >= 0).map(r -> r[1]).toList();
    List<Long> winners = seals.stream().filter(s -> s >= 0).toList();
    assertThat(winners).hasSize(1);
    long sealed = winners.get(0);
    // Every ticket given out was taken before the seal, exactly once, without gaps.
    assertThat(tickets)
        .containsExactlyInAnyOrderElementsOf(LongStream.rangeClosed(1, sealed).boxed().toList());
    assertThat(store.tally("race")).isEqualTo(new ScalableStore.Tally(sealed, true));
    // And every enter after the seal is refused.
    assertThat(together(200, i -> store.enter("race"))).containsOnly(-1L);
  }

  // ---- claims

  @Test
  void aClaimIsWonExactlyOnceUnderConcurrency() throws Exception {
    EtcdV3ScalableStore store = open();
    assertThat(store.claimed("r0/gone/3")).isFalse();
    List<Boolean> wins = together(500, i -> store.claim("r0/gone/3"));
    assertThat(wins).containsOnlyOnce(true);
    assertThat(store.claimed("r0/gone/3")).isTrue();
    assertThat(store.claim("r0/gone/3")).isFalse();
    assertThat(store.claimed("r0/gone/4")).isFalse();
  }

  // ---- values

  @Test
  void getIsNullForAMissingKeyAndAnEmptyValueIsNotMissing() {
    EtcdV3ScalableStore store = open();
    assertThat(store.get("r0/n/1")).isNull();
    store.set("r0/n/1", utf8("host_1_0"));
    assertThat(text(store.get("r0/n/1"))).isEqualTo("host_1_0");
    store.set("r0/n/1", new byte[0]); // a tombstone
    assertThat(store.get("r0/n/1")).isEmpty();
  }

  @Test
  void batchesBeyondEtcdsLimitsKeepTheirOrderAndMissingKeys() {
    EtcdV3ScalableStore store = open();
    int n = 1000; // eight transactions of at most 128 operations
    List<String> keys = new ArrayList<>();
    List<byte[]> values = new ArrayList<>();
    for (int i = 1; i <= n; i++) {
      keys.add("r0/rank/" + i);
      values.add(utf8((i - 1) + " " + n + " " + n));
    }
    store.setAll(keys, values);
    List<String> wanted = new ArrayList<>(keys);
    wanted.add(5, "r0/rank/missing");
    wanted.add("r0/rank/also-missing");
    List<byte[]> got = store.getAll(wanted);
    assertThat(got).hasSize(n + 2);
    assertThat(got.get(5)).isNull();
    assertThat(got.get(n + 1)).isNull();
    assertThat(text(got.get(0))).isEqualTo("0 1000 1000");
    assertThat(text(got.get(6))).isEqualTo("5 1000 1000");
    assertThat(text(got.get(n))).isEqualTo("999 1000 1000");

    // Values that together exceed etcd's 1.5 MiB request limit go in several transactions.
    byte[] big = new byte[200_000];
    java.util.Arrays.fill(big, (byte) 'x');
    List<String> bigKeys = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      bigKeys.add("big/" + i);
    }
    store.setAll(bigKeys, Collections.nCopies(20, big));
    assertThat(store.getAll(bigKeys.subList(0, 5))).allSatisfy(v -> assertThat(v).isEqualTo(big));
  }

  @Test
  void setAllWithARepeatedKeyKeepsTheLastValue() {
    EtcdV3ScalableStore store = open();
    store.setAll(List.of("a", "b", "a"), List.of(utf8("1"), utf8("2"), utf8("3")));
    assertThat(store.getAll(List.of("a", "b")))
        .extracting(EtcdV3ScalableStoreTest::text)
        .containsExactly("3", "2");
    assertThatThrownBy(() -> store.setAll(List.of("a"), List.of()))
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(store.getAll(List.of())).isEmpty();
    store.setAll(List.of(), List.of());
  }

  @Test
  void aWaiterThatComesBackReusesItsWatchAndADoneOneIsReplaced() throws Exception {
    EtcdV3ScalableStore store = open();
    EtcdV3Watches watches = store.session().watches();
    ByteSequence key =
        ByteSequence.from("linger-" + RUNS.incrementAndGet(), StandardCharsets.UTF_8);
    EtcdV3Watches.Shared first = watches.join(key);
    first.created().get(10, TimeUnit.SECONDS);
    watches.leave(first); // nobody waits now, but the watch stays open for a while
    EtcdV3Watches.Shared again = watches.join(key);
    assertThat(again).isSameAs(first);
    // Still watching while idle: a put then completes it, and the next waiter gets a new watch.
    watches.leave(again);
    store
        .session()
        .client()
        .getKVClient()
        .put(key, ByteSequence.from("v", StandardCharsets.UTF_8))
        .get(10, TimeUnit.SECONDS);
    assertThat(first.value().get(10, TimeUnit.SECONDS))
        .asString(StandardCharsets.UTF_8)
        .isEqualTo("v");
    EtcdV3Watches.Shared fresh = watches.join(key);
    assertThat(fresh).isNotSameAs(first);
    watches.leave(fresh);
  }

  // ---- counters

  @Test
  void countersStartAtZeroAndAddAnyDelta() {
    EtcdV3ScalableStore store = open();
    assertThat(store.add("round", 0)).isZero();
    assertThat(store.add("round", 1)).isEqualTo(1);
    assertThat(store.add("round", 1)).isEqualTo(2);
    assertThat(store.add("round", -1)).isEqualTo(1);
    assertThat(store.add("round", 40)).isEqualTo(41);
    assertThat(store.add("round", -50)).isEqualTo(-9);
    assertThat(store.add("round", 1)).isEqualTo(-8);
    assertThat(store.add("round", 0)).isEqualTo(-8);
    assertThat(store.add("other", 0)).isZero();
  }

  @Test
  void concurrentIncrementsAndDecrementsAreExact() throws Exception {
    EtcdV3ScalableStore store = open();
    // A whole round coming back counts itself waiting at once.
    List<Long> seen = together(1000, i -> store.add("r0/waiting", 1));
    assertThat(seen)
        .containsExactlyInAnyOrderElementsOf(LongStream.rangeClosed(1, 1000).boxed().toList());
    List<Long> mixed =
        together(600, i -> store.add("r0/waiting", i % 3 == 0 ? 5 : (i % 3 == 1 ? -1 : 1)));
    assertThat(mixed).hasSize(600);
    assertThat(store.add("r0/waiting", 0)).isEqualTo(1000 + 200 * 5);
  }

  // ---- waiting

  @Test
  void awaitReturnsAValueAlreadyThere() throws Exception {
    EtcdV3ScalableStore store = open();
    store.set("r0/rank/1", utf8("0 1 1"));
    assertThat(text(store.await("r0/rank/1", Duration.ofSeconds(30)))).isEqualTo("0 1 1");
  }

  @Test
  void awaitWakesOnALaterSet() throws Exception {
    EtcdV3ScalableStore store = open();
    CountDownLatch started = new CountDownLatch(1);
    Future<byte[]> waiting =
        pool.submit(
            () -> {
              started.countDown();
              return store.await("r0/master", Duration.ofSeconds(60));
            });
    started.await();
    long before = System.nanoTime();
    store.set("r0/master", utf8("host 29500"));
    assertThat(text(waiting.get(30, TimeUnit.SECONDS))).isEqualTo("host 29500");
    assertThat(Duration.ofNanos(System.nanoTime() - before)).isLessThan(Duration.ofSeconds(30));
  }

  @Test
  void awaitReturnsNullAfterItsTimeout() throws Exception {
    EtcdV3ScalableStore store = open();
    long before = System.nanoTime();
    assertThat(store.await("never", Duration.ofMillis(300))).isNull();
    assertThat(Duration.ofNanos(System.nanoTime() - before))
        .isGreaterThanOrEqualTo(Duration.ofMillis(300));
    assertThat(store.await("never", Duration.ZERO)).isNull();
  }

  @Test
  void twoThousandWaitersOnDifferentKeysAllWakeOnOneBatchedWrite() throws Exception {
    EtcdV3ScalableStore store = open();
    int n = 2000;
    AtomicInteger waiting = new AtomicInteger();
    List<Future<byte[]>> waiters = new ArrayList<>();
    for (int i = 1; i <= n; i++) {
      String key = "r0/rank/" + i;
      waiters.add(
          pool.submit(
              () -> {
                waiting.incrementAndGet();
                return store.await(key, Duration.ofSeconds(120));
              }));
    }
    Await.until("all waiters started", Duration.ofSeconds(60), () -> waiting.get() == n);
    List<String> keys = new ArrayList<>();
    List<byte[]> values = new ArrayList<>();
    for (int i = 1; i <= n; i++) {
      keys.add("r0/rank/" + i);
      values.add(utf8(Integer.toString(i - 1)));
    }
    store.setAll(keys, values);
    for (int i = 0; i < n; i++) {
      assertThat(text(waiters.get(i).get(60, TimeUnit.SECONDS))).isEqualTo(Integer.toString(i));
    }
  }

  @Test
  void anInterruptedWaiterStopsWaiting() throws Exception {
    EtcdV3ScalableStore store = open();
    CountDownLatch started = new CountDownLatch(1);
    Thread[] thread = new Thread[1];
    Future<Object> waiting =
        pool.submit(
            () -> {
              thread[0] = Thread.currentThread();
              started.countDown();
              try {
                return store.await("never", Duration.ofSeconds(120));
              } catch (InterruptedException | org.rdzv.api.RendezvousConnectionException e) {
                return e;
              }
            });
    started.await();
    Await.until(
        "the waiter is parked",
        Duration.ofSeconds(30),
        () -> thread[0].getState() == Thread.State.TIMED_WAITING);
    thread[0].interrupt();
    Object outcome = waiting.get(30, TimeUnit.SECONDS);
    // Interrupted in the watch: InterruptedException; in the read before it: a connection error
    // that says so. Either way it stops at once.
    assertThat(outcome)
        .satisfiesAnyOf(
            o -> assertThat(o).isInstanceOf(InterruptedException.class),
            o ->
                assertThat(o)
                    .isInstanceOf(org.rdzv.api.RendezvousConnectionException.class)
                    .extracting(x -> ((Exception) x).getMessage())
                    .asString()
                    .startsWith("Interrupted"));
  }

  // ---- heartbeats

  @Test
  void beatsChangeWithEveryBeatOfThatKeyOnly() {
    EtcdV3ScalableStore store = open();
    assertThat(store.beats("r0/hb/1")).isZero();
    store.beat("r0/hb/1");
    long first = store.beats("r0/hb/1");
    store.beat("r0/hb/1");
    long second = store.beats("r0/hb/1");
    assertThat(first).isNotZero();
    assertThat(second).isNotEqualTo(first);
    assertThat(store.beats("r0/hb/2")).isZero();
    assertThat(store.beats("r0/hb/1")).isEqualTo(second);
  }

  // ---- PyTorch's protocol

  @Test
  void theFenceIsCreatedOnlyWhereNoStateExistsAndReadsBackAsTheBackendsState() {
    EtcdV3ScalableStore store = open();
    assertThat(store.compatibleState()).isEmpty();
    byte[] fence = utf8("a closed state");
    assertThat(store.fenceCompatible(fence)).isTrue();
    assertThat(store.compatibleState()).hasValueSatisfying(v -> assertThat(v).isEqualTo(fence));
    EtcdV3Backend backend =
        new EtcdV3Backend(store.session(), runOf(store), EtcdRendezvous.V3_STATE_PREFIX);
    assertThat(backend.getState()).hasValueSatisfying(s -> assertThat(s.state()).isEqualTo(fence));
    assertThat(store.fenceCompatible(fence)).isTrue(); // once per session: the fence stays
  }

  @Test
  void aStateOfPyTorchsProtocolIsLeftAndRefusesTheFence() {
    String run = "scalable-" + RUNS.incrementAndGet();
    EtcdV3ScalableStore store = open(run, false);
    EtcdV3Backend backend = new EtcdV3Backend(store.session(), run, EtcdRendezvous.V3_STATE_PREFIX);
    byte[] theirs = utf8("a pytorch state");
    assertThat(backend.setState(theirs, null)).hasValueSatisfying(r -> assertThat(r.written()));
    assertThat(store.fenceCompatible(utf8("a closed state"))).isFalse();
    assertThat(store.fenceCompatible(utf8("a closed state"))).isFalse();
    assertThat(store.compatibleState()).hasValueSatisfying(v -> assertThat(v).isEqualTo(theirs));
    assertThat(backend.getState()).hasValueSatisfying(s -> assertThat(s.state()).isEqualTo(theirs));
  }

  @Test
  void concurrentFencesOfOneProcessShareOneTransaction() throws Exception {
    EtcdV3ScalableStore store = open();
    long before = revision(store);
    List<Boolean> fenced = together(200, i -> store.fenceCompatible(utf8("closed")));
    assertThat(fenced).containsOnly(true);
    assertThat(revision(store) - before).isEqualTo(1);
  }

  private static String runOf(EtcdV3ScalableStore store) {
    String key = store.etcdKey("");
    String encoded = key.substring("/rdzv/v1/".length(), key.length() - "/scalable/".length());
    return org.rdzv.dynamic.RendezvousKeys.decodeRunId(encoded).orElseThrow();
  }

  private static long revision(EtcdV3ScalableStore store) throws Exception {
    return store
        .session()
        .client()
        .getKVClient()
        .get(ByteSequence.from("/", StandardCharsets.UTF_8))
        .get(30, TimeUnit.SECONDS)
        .getHeader()
        .getRevision();
  }

  // ---- keys

  @Test
  void keysLiveUnderTheRunsOwnNamespaceAndRunIdsNeverShareThem() throws Exception {
    EtcdV3ScalableStore a = open("a", false);
    EtcdV3ScalableStore ab = open("a/b", false);
    EtcdV3ScalableStore tilde = open("~", false);
    assertThat(a.etcdKey("r0/joined")).isEqualTo("/rdzv/v1/a/scalable/r0/joined");
    assertThat(ab.etcdKey("r0/joined")).startsWith("/rdzv/v1/~").endsWith("/scalable/r0/joined");
    assertThat(a.enter("r0/joined")).isEqualTo(1);
    assertThat(ab.enter("r0/joined")).isEqualTo(1);
    assertThat(tilde.enter("r0/joined")).isEqualTo(1);
    a.set("x", utf8("a"));
    assertThat(ab.get("x")).isNull();
    List<KeyValue> underA =
        a.session()
            .client()
            .getKVClient()
            .get(
                ByteSequence.from("/rdzv/v1/a/", StandardCharsets.UTF_8),
                GetOption.builder().isPrefix(true).withKeysOnly(true).build())
            .get(30, TimeUnit.SECONDS)
            .getKvs();
    assertThat(underA)
        .extracting(kv -> kv.getKey().toString(StandardCharsets.UTF_8))
        .containsExactlyInAnyOrder("/rdzv/v1/a/scalable/r0/joined", "/rdzv/v1/a/scalable/x");
    assertThat(a.describe()).contains(etcd.endpoint()).contains("/rdzv/v1/a/scalable/");
  }

  // ---- sharing and read-only handles

  @Test
  void handlesShareOneSessionAndTheLastCloseClosesIt() throws Exception {
    String run = "shared-" + RUNS.incrementAndGet();
    // A connection option no other test uses, so this session is this test's alone.
    RendezvousParameters p = params(run).with("read_timeout", "37");
    ScalableStore first = PROVIDER.createScalableStore(p, RendezvousSettings.from(p), false);
    ScalableStore second = PROVIDER.createScalableStore(p, RendezvousSettings.from(p), false);
    EtcdV3Session session = ((EtcdV3ScalableStore) first).session();
    assertThat(((EtcdV3ScalableStore) second).session()).isSameAs(session);
    assertThat(first.enter("seq")).isEqualTo(1);
    first.close();
    first.close(); // idempotent: releases its share once
    assertThat(second.enter("seq")).isEqualTo(2);
    second.close();
    assertThatThrownBy(
            () ->
                session
                    .client()
                    .getKVClient()
                    .get(ByteSequence.from("x", StandardCharsets.UTF_8))
                    .get(10, TimeUnit.SECONDS))
        .isNotNull();
    // A new handle opens a new session.
    ScalableStore third = PROVIDER.createScalableStore(p, RendezvousSettings.from(p), false);
    opened.add(third);
    assertThat(((EtcdV3ScalableStore) third).session()).isNotSameAs(session);
    assertThat(third.enter("seq")).isEqualTo(3);
  }

  @Test
  void aReadOnlyHandleReadsWithShortTimeoutsAndWritesNothing() throws Exception {
    String run = "status-" + RUNS.incrementAndGet();
    EtcdV3ScalableStore writer = open(run, false);
    writer.enter("r0/joined");
    writer.add("round", 1);
    writer.set("r0/size", utf8("1"));
    EtcdV3ScalableStore reader = open(run, true);
    assertThat(reader.session().connection().readTimeout()).isEqualTo(Duration.ofSeconds(5));
    long before = revision(reader);
    assertThat(reader.tally("r0/joined")).isEqualTo(new ScalableStore.Tally(1, false));
    assertThat(reader.add("round", 0)).isEqualTo(1);
    assertThat(reader.add("r0/waiting", 0)).isZero();
    assertThat(text(reader.get("r0/size"))).isEqualTo("1");
    assertThat(reader.getAll(List.of("r0/size", "nope"))).hasSize(2);
    assertThat(reader.claimed("r0/gone/1")).isFalse();
    assertThat(reader.beats("r0/hb/1")).isZero();
    assertThat(reader.compatibleState()).isEmpty();
    List<Runnable> writes =
        List.of(
            () -> reader.enter("r0/joined"),
            () -> reader.seal("r0/joined"),
            () -> reader.claim("r0/gone/1"),
            () -> reader.set("k", utf8("v")),
            () -> reader.setAll(List.of("k"), List.of(utf8("v"))),
            () -> reader.add("round", 1),
            () -> reader.beat("r0/hb/1"),
            () -> reader.fenceCompatible(utf8("closed")));
    for (Runnable write : writes) {
      assertThatThrownBy(write::run).isInstanceOf(IllegalStateException.class);
    }
    assertThat(revision(reader)).isEqualTo(before);
  }

  @Test
  void theWorkersStoreIsTheEtcdV3BackendsStore() {
    EtcdV3ScalableStore store = open();
    store.store().set("torch.rendezvous.x.0/MASTER_ADDR", utf8("h"));
    assertThat(store.store()).isInstanceOf(EtcdV3Store.class);
    assertThat(text(store.store().get("torch.rendezvous.x.0/MASTER_ADDR"))).isEqualTo("h");
  }

  @Test
  void anUnreachableEtcdIsAConnectionErrorNamingIt() {
    int port = org.rdzv.testing.FreePort.next();
    RendezvousParameters p =
        new RendezvousParameters(
            "etcd-v3",
            "127.0.0.1:" + port,
            "down",
            1,
            1,
            Map.of("protocol", "scalable", "read_timeout", "2"));
    try (ScalableStore store = PROVIDER.createScalableStore(p, RendezvousSettings.from(p), false)) {
      assertThatThrownBy(() -> store.enter("r0/joined"))
          .isInstanceOf(org.rdzv.api.RendezvousConnectionException.class)
          .hasMessageContaining("127.0.0.1:" + port);
    }
  }

  @Test
  void protocolNamesTheRendezvousProtocolAndCertificatesPickHttps() {
    Map<String, Object> base = new HashMap<>();
    base.put("protocol", "scalable");
    RendezvousParameters plain =
        new RendezvousParameters("etcd-v3", "h:1", "r", 1, 1, Map.copyOf(base));
    assertThat(EtcdV3HandlerProvider.connection(plain).protocol()).isEqualTo("http");
    assertThat(EtcdV3HandlerProvider.connection(plain.with("ca_cert", "/ca.pem")).protocol())
        .isEqualTo("https");
    assertThat(
            EtcdV3HandlerProvider.connection(
                    plain.with("protocol", " PyTorch ").with("ssl_cert", "/c"))
                .protocol())
        .isEqualTo("https");
    assertThat(EtcdV3HandlerProvider.connection(plain.with("protocol", "https")).protocol())
        .isEqualTo("https");
    assertThatThrownBy(() -> EtcdV3HandlerProvider.connection(plain.with("protocol", "grpc")))
        .hasMessage("The protocol must be HTTP or HTTPS.");
  }
}
