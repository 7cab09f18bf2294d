package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousClosedException;
import org.rdzv.api.RendezvousTimeoutException;

/** The executor and state holder over an in-memory backend, time driven by a fake clock. */
class ExecutorTest {
  final FakeClock clock = new FakeClock();
  final MemoryBackend backend = new MemoryBackend(clock);

  RendezvousSettings settings(int min, int max, StateDialect dialect) {
    return new RendezvousSettings(
        "run",
        min,
        max,
        Duration.ofSeconds(600),
        Duration.ofSeconds(30),
        Duration.ofSeconds(30),
        Duration.ofSeconds(5),
        Duration.ofSeconds(5),
        3,
        dialect,
        true,
        Duration.ofSeconds(1));
  }

  record Node(NodeDescriptor desc, StateHolder holder, Executor executor) {}

  Node node(String host, int min, int max, StateDialect dialect) {
    RendezvousSettings s = settings(min, max, dialect);
    NodeDescriptor d = new NodeDescriptor(host, 1, 0);
    StateHolder h = new StateHolder(backend, s, clock);
    return new Node(d, h, new Executor(d, h, s, clock));
  }

  long deadline(Duration d) {
    return clock.nanoTime() + d.toNanos();
  }

  @Test
  void singleNodeCompletesAtMaxAtOnce() {
    Node n = node("a", 1, 1, StateDialect.V1_13);
    n.executor().run(Ops.JOIN, deadline(Duration.ofSeconds(600)), true);
    MutableState s = backend.read();
    assertThat(s.complete).isTrue();
    assertThat(s.participants).containsExactly(Map.entry(n.desc(), 0));
    assertThat(s.deadline).isNull();
    assertThat(clock.nanoTime()).isEqualTo(1_000_000_000_000L); // no waiting at all
  }

  @Test
  void minReachedSetsTheLastCallAndTheRoundCompletesWhenItPasses() {
    Node b = node("node10", 2, 3, StateDialect.V1_13);
    MutableState other = new MutableState();
    NodeDescriptor a = new NodeDescriptor("node9", 2, 0);
    other.participants.put(a, 0);
    other.lastHeartbeats.put(a, clock.wallNow().plusSeconds(3600)); // a stays alive
    backend.put(other, StateDialect.V1_13);
    Instant start = clock.wallNow();
    b.executor().run(Ops.JOIN, deadline(Duration.ofSeconds(600)), true);
    MutableState s = backend.read();
    assertThat(s.complete).isTrue();
    assertThat(s.deadline).isNull();
    assertThat(Duration.between(start, clock.wallNow()))
        .isGreaterThanOrEqualTo(Duration.ofSeconds(30))
        .isLessThan(Duration.ofSeconds(31));
    assertThat(s.participants).containsEntry(a, 0).containsEntry(b.desc(), 1);
  }

  @Test
  void aParticipantDyingDuringTheLastCallClearsTheDeadlineAndTheRoundTimesOut() {
    Node b = node("b", 2, 3, StateDialect.V1_13);
    MutableState other = new MutableState();
    NodeDescriptor a = new NodeDescriptor("a", 2, 0);
    other.participants.put(a, 0);
    other.lastHeartbeats.put(a, clock.wallNow()); // a never heartbeats again
    backend.put(other, StateDialect.V1_13);
    assertThatThrownBy(() -> b.executor().run(Ops.JOIN, deadline(Duration.ofSeconds(60)), true))
        .isInstanceOf(RendezvousTimeoutException.class);
    assertThat(backend.read().participants).doesNotContainKey(b.desc());
  }

  @Test
  void naturalRanksPutNode9BeforeNode10() {
    Node b = node("node10", 2, 2, StateDialect.V1_13);
    MutableState other = new MutableState();
    NodeDescriptor a = new NodeDescriptor("node9", 2, 0);
    other.participants.put(a, 0);
    other.lastHeartbeats.put(a, clock.wallNow());
    backend.put(other, StateDialect.V1_13);
    b.executor().run(Ops.JOIN, deadline(Duration.ofSeconds(600)), true);
    MutableState s = backend.read();
    assertThat(s.complete).isTrue();
    assertThat(s.participants).containsEntry(a, 0).containsEntry(b.desc(), 1);
  }

  @Test
  void pytorchRanksPutNode10BeforeNode9() {
    RendezvousSettings st =
        new RendezvousSettings(
            "run",
            2,
            2,
            Duration.ofSeconds(600),
            Duration.ofSeconds(30),
            Duration.ofSeconds(30),
            Duration.ofSeconds(5),
            Duration.ofSeconds(5),
            3,
            StateDialect.V1_13,
            false,
            Duration.ofSeconds(1));
    NodeDescriptor me = new NodeDescriptor("node10", 1, 0);
    StateHolder h = new StateHolder(backend, st, clock);
    MutableState other = new MutableState();
    NodeDescriptor a = new NodeDescriptor("node9", 2, 0);
    other.participants.put(a, 0);
    other.lastHeartbeats.put(a, clock.wallNow());
    backend.put(other, StateDialect.V1_13);
    new Executor(me, h, st, clock).run(Ops.JOIN, deadline(Duration.ofSeconds(600)), true);
    assertThat(backend.read().participants).containsEntry(me, 0).containsEntry(a, 1);
  }

  @Test
  void aRejectedWriteReDecidesFromTheWinnersState() {
    Node n = node("a", 1, 3, StateDialect.V1_13);
    n.holder().sync(); // reads "no state"
    // someone else writes first
    MutableState other = new MutableState();
    NodeDescriptor b = new NodeDescriptor("b", 2, 0);
    other.participants.put(b, 0);
    other.lastHeartbeats.put(b, clock.wallNow());
    other.deadline = clock.wallNow().plusSeconds(30);
    backend.put(other, StateDialect.V1_13);
    Ops.Context ctx = n.executor().context();
    n.executor().apply(Ops.Action.ADD_TO_PARTICIPANTS, ctx);
    n.holder().markDirty();
    assertThat(n.holder().sync()).isFalse();
    assertThat(backend.rejected).isEqualTo(1);
    assertThat(n.holder().state().participants).containsOnlyKeys(b);
  }

  @Test
  void lateNodeWaitsAndIsCountedThenJoinsTheNextRound() {
    Node n = node("late", 1, 3, StateDialect.V1_13);
    MutableState done = new MutableState();
    NodeDescriptor a = new NodeDescriptor("a", 2, 0);
    done.participants.put(a, 0);
    done.complete = true;
    done.lastHeartbeats.put(a, clock.wallNow());
    backend.put(done, StateDialect.V1_13);
    n.holder().sync();
    n.executor()
        .apply(
            Ops.JOIN.next(n.executor().context(), deadline(Duration.ofSeconds(60))),
            n.executor().context());
    n.holder().markDirty();
    n.holder().sync();
    assertThat(backend.read().waitList).containsExactly(n.desc());
    // a leaves (exit op): the round empties, round 1 opens, and the late node joins it
    MutableState s = backend.read();
    s.participants.remove(a);
    s.lastHeartbeats.remove(a);
    StateHolder.removeParticipantEpilogue(s, settings(1, 3, StateDialect.V1_13));
    backend.put(s, StateDialect.V1_13);
    n.executor().run(Ops.JOIN, deadline(Duration.ofSeconds(60)), true);
    MutableState after = backend.read();
    assertThat(after.round).isEqualTo(1);
    assertThat(after.waitList).isEmpty();
    assertThat(after.participants).containsOnlyKeys(n.desc());
  }

  @Test
  void joinTimesOutAndRollsItselfBack() {
    Node n = node("a", 2, 2, StateDialect.V1_13);
    assertThatThrownBy(() -> n.executor().run(Ops.JOIN, deadline(Duration.ofSeconds(3)), true))
        .isInstanceOf(RendezvousTimeoutException.class);
    MutableState s = backend.read();
    assertThat(s.participants).isEmpty();
    assertThat(s.lastHeartbeats).isEmpty();
  }

  @Test
  void deadNodesAreDroppedAfterIntervalTimesAttempts() {
    Node n = node("a", 1, 3, StateDialect.V1_13);
    MutableState s = new MutableState();
    NodeDescriptor dead = new NodeDescriptor("dead", 2, 0);
    NodeDescriptor alive = new NodeDescriptor("alive", 3, 0);
    s.participants.put(dead, 0);
    s.participants.put(alive, 1);
    s.complete = true;
    s.lastHeartbeats.put(dead, clock.wallNow().minusSeconds(16));
    s.lastHeartbeats.put(alive, clock.wallNow().minusSeconds(14));
    backend.put(s, StateDialect.V1_13);
    n.holder().sync();
    assertThat(n.holder().deadNodes()).containsExactly(dead);
    assertThat(n.holder().state().participants).containsOnlyKeys(alive);
    assertThat(n.holder().state().complete).isTrue();
    // the removal is local until this node writes
    assertThat(backend.read().participants).containsKeys(dead, alive);
  }

  @Test
  void lastParticipantDyingOpensTheNextRound() {
    Node n = node("a", 1, 3, StateDialect.V1_13);
    MutableState s = new MutableState();
    NodeDescriptor dead = new NodeDescriptor("dead", 2, 0);
    s.participants.put(dead, 0);
    s.complete = true;
    s.lastHeartbeats.put(dead, clock.wallNow().minusSeconds(16));
    backend.put(s, StateDialect.V1_13);
    n.holder().sync();
    assertThat(n.holder().state().complete).isFalse();
    assertThat(n.holder().state().round).isEqualTo(1);
  }

  @Test
  void droppingBelowMinClearsTheDeadline() {
    Node n = node("a", 2, 3, StateDialect.V1_13);
    MutableState s = new MutableState();
    NodeDescriptor dead = new NodeDescriptor("dead", 2, 0);
    NodeDescriptor alive = new NodeDescriptor("alive", 3, 0);
    s.participants.put(dead, 0);
    s.participants.put(alive, 0);
    s.deadline = clock.wallNow().plusSeconds(10);
    s.lastHeartbeats.put(dead, clock.wallNow().minusSeconds(16));
    s.lastHeartbeats.put(alive, clock.wallNow());
    backend.put(s, StateDialect.V1_13);
    n.holder().sync();
    assertThat(n.holder().state().deadline).isNull();
  }

  @Test
  void readsAreCachedForOneSecondUnlessAChangeIsSignalled() {
    Node n = node("a", 1, 3, StateDialect.V1_13);
    n.holder().sync();
    n.holder().sync();
    assertThat(backend.reads).isEqualTo(1);
    clock.advance(Duration.ofMillis(1001));
    n.holder().sync();
    assertThat(backend.reads).isEqualTo(2);
    n.holder().invalidate();
    n.holder().sync();
    assertThat(backend.reads).isEqualTo(3);
  }

  @Test
  void closeOpClosesAndJoinThenFails() {
    Node n = node("a", 1, 3, StateDialect.V1_13);
    n.executor().run(Ops.CLOSE, deadline(Duration.ofSeconds(30)), false);
    assertThat(backend.read().closed).isTrue();
    Node m = node("b", 1, 3, StateDialect.V1_13);
    assertThatThrownBy(() -> m.executor().run(Ops.JOIN, deadline(Duration.ofSeconds(30)), true))
        .isInstanceOf(RendezvousClosedException.class);
  }

  @Test
  void keepAliveRefreshesOnlyWhenDue() {
    Node n = node("a", 1, 1, StateDialect.V1_13);
    n.executor().run(Ops.JOIN, deadline(Duration.ofSeconds(600)), true);
    int writes = backend.writes;
    n.executor().run(Ops.KEEP_ALIVE, deadline(Duration.ofSeconds(5)), false);
    assertThat(backend.writes).isEqualTo(writes);
    clock.advance(Duration.ofSeconds(5));
    n.executor().run(Ops.KEEP_ALIVE, deadline(Duration.ofSeconds(5)), false);
    assertThat(backend.writes).isEqualTo(writes + 1);
    assertThat(backend.read().lastHeartbeats.get(n.desc())).isEqualTo(clock.wallNow());
  }

  @Test
  void redundantNodeIn2xParksThenTakesAFreedSeatWithAFreshDeadline() {
    Node n = node("spare", 1, 1, StateDialect.V2_6);
    MutableState s = new MutableState();
    NodeDescriptor a = new NodeDescriptor("a", 2, 0);
    s.participants.put(a, 0);
    s.complete = true;
    s.lastHeartbeats.put(a, clock.wallNow().plusSeconds(3600)); // never expires in this test
    backend.put(s, StateDialect.V2_6);
    n.holder().sync();
    n.executor()
        .apply(
            Ops.JOIN.next(n.executor().context(), deadline(Duration.ofSeconds(1))),
            n.executor().context());
    n.holder().markDirty();
    n.holder().sync();
    MutableState parked = backend.read();
    assertThat(parked.redundancyList).containsExactly(n.desc());
    assertThat(parked.dialect).isEqualTo(StateDialect.V2_6);
    // a leaves; the spare's join (whose deadline has long passed) takes the seat
    parked.participants.clear();
    parked.lastHeartbeats.remove(a);
    StateHolder.removeParticipantEpilogue(parked, settings(1, 1, StateDialect.V2_6));
    backend.put(parked, StateDialect.V2_6);
    clock.advance(Duration.ofSeconds(1));
    n.executor().run(Ops.JOIN, clock.nanoTime() - 10_000_000_000L, true);
    MutableState after = backend.read();
    assertThat(after.participants).containsOnlyKeys(n.desc());
    assertThat(after.redundancyList).isEmpty();
    assertThat(after.complete).isTrue();
  }

  @Test
  void writesTheDialectAlreadyStoredNotTheConfiguredOne() {
    Node n = node("a", 1, 3, StateDialect.V1_13);
    MutableState s = new MutableState();
    NodeDescriptor b = new NodeDescriptor("b", 2, 0);
    s.participants.put(b, 0);
    s.lastHeartbeats.put(b, clock.wallNow());
    s.deadline = clock.wallNow().minusSeconds(1);
    backend.put(s, StateDialect.V2_0);
    n.executor().run(Ops.JOIN, deadline(Duration.ofSeconds(1)), true);
    assertThat(backend.read().dialect).isEqualTo(StateDialect.V2_0);
    assertThat(List.copyOf(backend.read().participants.keySet())).contains(n.desc());
  }

  @Test
  void aTurnHolderAdmitsQueuedJoinersAsIfEachAddedItself() {
    NodeDescriptor j1 = new NodeDescriptor("j1", 2, 0);
    NodeDescriptor j2 = new NodeDescriptor("j2", 3, 0);
    NodeDescriptor j3 = new NodeDescriptor("j3", 4, 0);
    int[] admitted = {-1};
    boolean[] closed = {false};
    RendezvousBackend withTurns =
        new RendezvousBackend() {
          @Override
          public String name() {
            return backend.name();
          }

          @Override
          public java.util.Optional<State> getState() {
            return backend.getState();
          }

          @Override
          public java.util.Optional<SetResult> setState(byte[] st, Object token) {
            return backend.setState(st, token);
          }

          @Override
          public boolean awaitChange(Object token, Duration timeout) {
            return backend.awaitChange(token, timeout);
          }

          @Override
          public Turn awaitTurn(Duration timeout, NodeDescriptor joining) {
            assertThat(joining).isNotNull();
            return new Turn() {
              @Override
              public List<NodeDescriptor> waitingJoiners() {
                return List.of(j1, j2, j3);
              }

              @Override
              public void admitted(int count) {
                admitted[0] = count;
              }

              @Override
              public void close() {
                closed[0] = true;
              }
            };
          }
        };
    RendezvousSettings st = settings(2, 3, StateDialect.V1_13);
    NodeDescriptor me = new NodeDescriptor("me", 1, 0);
    StateHolder h = new StateHolder(withTurns, st, clock);
    new Executor(me, h, st, clock).run(Ops.JOIN, deadline(Duration.ofSeconds(60)), true);
    MutableState s = backend.read();
    // me + j1 reach min (the last call starts), j2 reaches max (complete at once); j3 has no seat
    assertThat(s.participants).containsOnlyKeys(me, j1, j2);
    assertThat(s.complete).isTrue();
    assertThat(s.lastHeartbeats).containsOnlyKeys(me, j1, j2);
    assertThat(admitted[0]).isEqualTo(2);
    assertThat(closed[0]).isTrue();
    assertThat(backend.writes).isEqualTo(1);
  }
}
