package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;
import static org.rdzv.dynamic.Ops.Action.*;

import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;

/** Every rule of PyTorch's exit, join, close and keep-alive operations, with a fixed time. */
class OpsTest {
  static final NodeDescriptor ME = new NodeDescriptor("node1", 10, 0);
  static final NodeDescriptor OTHER = new NodeDescriptor("node2", 20, 0);
  static final NodeDescriptor THIRD = new NodeDescriptor("node3", 30, 0);
  static final Instant NOW = Instant.parse("2026-01-02T03:04:05Z");
  static final long NANO_NOW = 5_000_000_000_000L;
  static final long FUTURE = NANO_NOW + 1_000_000_000L;
  static final long PAST = NANO_NOW - 1_000_000_000L; // within the rollback window
  static final long LONG_PAST = NANO_NOW - 6_000_000_000L; // beyond it

  static RendezvousSettings settings(int min, int max) {
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
        StateDialect.V1_13,
        true,
        Duration.ofSeconds(1));
  }

  static Ops.Context ctx(MutableState s, int min, int max, StateDialect dialect) {
    return new Ops.Context(ME, s, settings(min, max), dialect, NOW, NANO_NOW);
  }

  static Ops.Action join(MutableState s, int min, int max, long deadline) {
    return Ops.JOIN.next(ctx(s, min, max, StateDialect.V1_13), deadline);
  }

  static Ops.Action join2(MutableState s, int min, int max, long deadline) {
    return Ops.JOIN.next(ctx(s, min, max, StateDialect.V2_6), deadline);
  }

  static MutableState state(NodeDescriptor... participants) {
    MutableState s = new MutableState();
    for (NodeDescriptor n : participants) {
      s.participants.put(n, 0);
      s.lastHeartbeats.put(n, NOW);
    }
    return s;
  }

  @Test
  void exitRemovesAParticipantOrTimesOutOrFinishes() {
    assertThat(Ops.EXIT.next(ctx(state(ME), 1, 2, StateDialect.V1_13), FUTURE))
        .isEqualTo(REMOVE_FROM_PARTICIPANTS);
    assertThat(Ops.EXIT.next(ctx(state(ME), 1, 2, StateDialect.V1_13), PAST))
        .isEqualTo(ERROR_TIMEOUT);
    assertThat(Ops.EXIT.next(ctx(state(OTHER), 1, 2, StateDialect.V1_13), FUTURE))
        .isEqualTo(FINISH);
  }

  @Test
  void joinAddsItselfToAnOpenRound() {
    assertThat(join(state(), 2, 3, FUTURE)).isEqualTo(ADD_TO_PARTICIPANTS);
    assertThat(join(state(OTHER), 2, 3, FUTURE)).isEqualTo(ADD_TO_PARTICIPANTS);
  }

  @Test
  void joinOnAClosedRendezvousFails() {
    MutableState s = state();
    s.closed = true;
    assertThat(join(s, 1, 2, FUTURE)).isEqualTo(ERROR_CLOSED);
  }

  @Test
  void joinFinishesWhenCompleteWithMe() {
    MutableState s = state(ME, OTHER);
    s.complete = true;
    assertThat(join(s, 1, 2, PAST)).isEqualTo(FINISH);
  }

  @Test
  void joinWaitsForTheLastCall() {
    MutableState s = state(ME, OTHER);
    s.deadline = NOW.plusSeconds(10);
    assertThat(join(s, 2, 3, FUTURE)).isEqualTo(SYNC);
    s.deadline = NOW.minusMillis(1);
    assertThat(join(s, 2, 3, FUTURE)).isEqualTo(MARK_RENDEZVOUS_COMPLETE);
  }

  @Test
  void joinWithTooFewParticipantsSyncs() {
    MutableState s = state(ME);
    assertThat(join(s, 2, 3, FUTURE)).isEqualTo(SYNC);
  }

  @Test
  void aMissingDeadlineNeverCompletesTheRound() {
    // 1.13 would crash comparing None; 2.x and we wait.
    MutableState s = state(ME, OTHER);
    s.deadline = null;
    assertThat(join(s, 2, 3, FUTURE)).isEqualTo(SYNC);
  }

  @Test
  void joinRollsBackWithinFiveSecondsOfItsDeadline() {
    assertThat(join(state(ME), 2, 3, PAST)).isEqualTo(REMOVE_FROM_PARTICIPANTS);
    MutableState waiting = state(OTHER);
    waiting.complete = true;
    waiting.waitList.add(ME);
    waiting.lastHeartbeats.put(ME, NOW);
    assertThat(join(waiting, 1, 3, PAST)).isEqualTo(REMOVE_FROM_WAIT_LIST);
    assertThat(join(state(ME), 2, 3, LONG_PAST)).isEqualTo(ERROR_TIMEOUT);
    assertThat(join(state(), 2, 3, PAST)).isEqualTo(ERROR_TIMEOUT);
  }

  @Test
  void lateNodeGoesToTheWaitList() {
    MutableState s = state(OTHER);
    s.complete = true;
    assertThat(join(s, 1, 3, FUTURE)).isEqualTo(ADD_TO_WAIT_LIST);
    s.waitList.add(ME);
    s.lastHeartbeats.put(ME, NOW);
    assertThat(join(s, 1, 3, FUTURE)).isEqualTo(SYNC);
  }

  @Test
  void waitingNodeKeepsItselfAlive() {
    MutableState s = state(OTHER);
    s.complete = true;
    s.waitList.add(ME);
    s.lastHeartbeats.put(ME, NOW.minusSeconds(5));
    assertThat(join(s, 1, 3, FUTURE)).isEqualTo(KEEP_ALIVE);
    s.lastHeartbeats.put(ME, NOW.minusSeconds(4));
    assertThat(join(s, 1, 3, FUTURE)).isEqualTo(SYNC);
  }

  @Test
  void fullCompleteRoundIn113JustPollsUntilTheTimeout() {
    MutableState s = state(OTHER, THIRD);
    s.complete = true;
    assertThat(join(s, 2, 2, FUTURE)).isEqualTo(SYNC);
    assertThat(join(s, 2, 2, LONG_PAST)).isEqualTo(ERROR_TIMEOUT);
  }

  @Test
  void fullCompleteRoundIn2xParksInTheRedundancyList() {
    MutableState s = state(OTHER, THIRD);
    s.complete = true;
    assertThat(join2(s, 2, 2, FUTURE)).isEqualTo(ADD_TO_REDUNDANCY_LIST);
    s.redundancyList.add(ME);
    s.lastHeartbeats.put(ME, NOW);
    // Parked: no timeout while the round is full.
    assertThat(join2(s, 2, 2, LONG_PAST)).isEqualTo(SYNC);
    s.lastHeartbeats.put(ME, NOW.minusSeconds(6));
    assertThat(join2(s, 2, 2, LONG_PAST)).isEqualTo(KEEP_ALIVE);
    s.participants.remove(THIRD);
    assertThat(join2(s, 2, 2, LONG_PAST)).isEqualTo(REMOVE_FROM_REDUNDANCY_LIST);
    s.closed = true;
    assertThat(join2(s, 2, 2, FUTURE)).isEqualTo(ERROR_GRACEFUL_EXIT);
  }

  @Test
  void closeOp() {
    MutableState s = state();
    assertThat(Ops.CLOSE.next(ctx(s, 1, 1, StateDialect.V1_13), FUTURE))
        .isEqualTo(MARK_RENDEZVOUS_CLOSED);
    assertThat(Ops.CLOSE.next(ctx(s, 1, 1, StateDialect.V1_13), PAST)).isEqualTo(ERROR_TIMEOUT);
    s.closed = true;
    assertThat(Ops.CLOSE.next(ctx(s, 1, 1, StateDialect.V1_13), PAST)).isEqualTo(FINISH);
  }

  @Test
  void keepAliveOp() {
    MutableState s = state(ME);
    assertThat(Ops.KEEP_ALIVE.next(ctx(s, 1, 1, StateDialect.V1_13), FUTURE)).isEqualTo(FINISH);
    s.lastHeartbeats.put(ME, NOW.minusSeconds(5)); // exactly the interval: due (<=)
    assertThat(Ops.KEEP_ALIVE.next(ctx(s, 1, 1, StateDialect.V1_13), FUTURE)).isEqualTo(KEEP_ALIVE);
    assertThat(Ops.KEEP_ALIVE.next(ctx(s, 1, 1, StateDialect.V1_13), PAST))
        .isEqualTo(ERROR_TIMEOUT);
    assertThat(Ops.KEEP_ALIVE.next(ctx(state(), 1, 1, StateDialect.V1_13), PAST)).isEqualTo(FINISH);
  }

  @Test
  void leaveRemovesFromWhicheverCollection() {
    assertThat(Ops.LEAVE.next(ctx(state(ME), 1, 2, StateDialect.V1_13), FUTURE))
        .isEqualTo(REMOVE_FROM_PARTICIPANTS);
    MutableState w = state();
    w.waitList.add(ME);
    assertThat(Ops.LEAVE.next(ctx(w, 1, 2, StateDialect.V1_13), FUTURE))
        .isEqualTo(REMOVE_FROM_WAIT_LIST);
    MutableState r = state();
    r.redundancyList.add(ME);
    assertThat(Ops.LEAVE.next(ctx(r, 1, 2, StateDialect.V2_6), FUTURE))
        .isEqualTo(REMOVE_FROM_REDUNDANCY_LIST);
    assertThat(Ops.LEAVE.next(ctx(state(OTHER), 1, 2, StateDialect.V1_13), PAST)).isEqualTo(FINISH);
    assertThat(Ops.LEAVE.next(ctx(state(ME), 1, 2, StateDialect.V1_13), PAST))
        .isEqualTo(ERROR_TIMEOUT);
  }
}
