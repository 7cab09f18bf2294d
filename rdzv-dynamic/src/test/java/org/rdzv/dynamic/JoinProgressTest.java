package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousTimeoutException;

/** What a joining node says while its round forms and when it times out, on a fake clock. */
class JoinProgressTest {
  final FakeClock clock = new FakeClock();
  final MemoryBackend backend = new MemoryBackend(clock);

  RendezvousSettings settings(int min, int max, int joinTimeoutSeconds) {
    return new RendezvousSettings(
        "obs",
        min,
        max,
        Duration.ofSeconds(joinTimeoutSeconds),
        Duration.ofSeconds(30),
        Duration.ofSeconds(30),
        Duration.ofSeconds(5),
        Duration.ofSeconds(5),
        3,
        StateDialect.V1_13,
        true,
        Duration.ofSeconds(1));
  }

  MutableState othersJoined(int n) {
    MutableState s = new MutableState();
    for (int i = 0; i < n; i++) {
      NodeDescriptor d = new NodeDescriptor("node" + (i + 10), 7, 0);
      s.participants.put(d, 0);
      s.lastHeartbeats.put(d, clock.wallNow().plusSeconds(3600)); // they stay alive
    }
    return s;
  }

  @Test
  void aNodeWaitingForTheMinimumTimesOutNamingWhoHadJoined() {
    RendezvousSettings st = settings(3, 4, 45);
    backend.put(othersJoined(1), StateDialect.V1_13);
    NodeDescriptor me = new NodeDescriptor("node9", 1, 0);
    Executor executor = new Executor(me, new StateHolder(backend, st, clock), st, clock);
    long start = clock.nanoTime();
    // The node rolls itself back before it fails; the error reports the round as it waited.
    assertThatThrownBy(
            () -> executor.run(Ops.JOIN, start + Duration.ofSeconds(45).toNanos(), true, true))
        .isInstanceOf(RendezvousTimeoutException.class)
        .hasMessage(
            "The rendezvous 'obs' operation timed out. 2 of at least 3 nodes joined; if PyTorch"
                + " 2.x nodes are among the missing, they cannot read a state in the 1.13 dialect"
                + " (for 2.x nodes leave"
                + " store_protocol and state_dialect unset, and use a new run id). Round 0 had 2"
                + " of the 3 to 4 nodes expected (min_nodes 3, max_nodes 4): node9_1_0,"
                + " node10_7_0.");
    assertThat(backend.read().participants).doesNotContainKey(me);
  }

  @Test
  void aLineIsDueEveryFiveSecondsNotBefore() {
    RendezvousSettings st = settings(3, 4, 45);
    MutableState s = othersJoined(1);
    NodeDescriptor me = new NodeDescriptor("node9", 1, 0);
    s.participants.put(me, 0);
    long start = clock.nanoTime();
    long deadline = start + Duration.ofSeconds(45).toNanos();
    JoinProgress progress = new JoinProgress(start);
    java.util.List<String> lines = new java.util.ArrayList<>();
    for (int tenths = 0; tenths <= 450; tenths += 7) {
      Ops.Context ctx =
          new Ops.Context(
              me,
              s,
              st,
              StateDialect.V1_13,
              clock.wallNow(),
              start + Duration.ofMillis(100L * tenths).toNanos());
      String line = progress.due(ctx, deadline);
      if (line != null) {
        lines.add(line);
      }
    }
    assertThat(lines).hasSize(8); // at about 5, 10, ..., 40 s; nothing in the first five
    assertThat(lines.get(0))
        .isEqualTo(
            "rendezvous 'obs' round 0: 2 joined (min 3, max 4): node9_1_0, node10_7_0; last call"
                + " after 1 more node; join timeout in 39.4 s");
  }

  @Test
  void theLastCallCountsDownOnceTheMinimumIsThere() {
    RendezvousSettings st = settings(2, 9, 600);
    MutableState s = othersJoined(7);
    NodeDescriptor me = new NodeDescriptor("node2", 1, 0);
    s.participants.put(me, 0);
    s.deadline = clock.wallNow().plusSeconds(25);
    Ops.Context ctx =
        new Ops.Context(me, s, st, StateDialect.V1_13, clock.wallNow(), clock.nanoTime());
    assertThat(JoinProgress.line(ctx, clock.nanoTime() + Duration.ofSeconds(595).toNanos()))
        .isEqualTo(
            "rendezvous 'obs' round 0: 8 joined (min 2, max 9): node2_1_0, node10_7_0,"
                + " node11_7_0, node12_7_0, node13_7_0 and 3 more; last call in 25.0 s; join"
                + " timeout in 595.0 s");
  }

  @Test
  void aQuickRoundSaysNothing() {
    JoinProgress progress = new JoinProgress(clock.nanoTime());
    RendezvousSettings st = settings(1, 1, 600);
    Ops.Context ctx =
        new Ops.Context(
            new NodeDescriptor("a", 1, 0),
            new MutableState(),
            st,
            StateDialect.V1_13,
            clock.wallNow(),
            clock.nanoTime() + Duration.ofSeconds(4).toNanos());
    assertThat(progress.due(ctx, clock.nanoTime() + Duration.ofSeconds(600).toNanos())).isNull();
  }

  @Test
  void aNodeOutsideACompleteRoundSaysWhatItWaitsFor() {
    RendezvousSettings st = settings(1, 2, 600);
    MutableState full = othersJoined(2);
    full.complete = true;
    NodeDescriptor me = new NodeDescriptor("late", 1, 0);
    full.waitList.add(me);
    full.lastHeartbeats.put(me, clock.wallNow());
    Ops.Context ctx =
        new Ops.Context(me, full, st, StateDialect.V1_13, clock.wallNow(), clock.nanoTime());
    assertThat(JoinProgress.line(ctx, clock.nanoTime() + Duration.ofSeconds(90).toNanos()))
        .isEqualTo(
            "rendezvous 'obs' round 0: complete with 2 nodes (max 2); this node waits for the next"
                + " round, 1 node waiting; join timeout in 90.0 s");
    JoinProgress progress = new JoinProgress(clock.nanoTime());
    progress.observe(ctx);
    assertThat(progress.timeoutDetail(ctx))
        .isEqualTo(
            "Round 0 completed with 2 nodes without this node (max_nodes 2); 1 node waited for the"
                + " next round.");
  }
}
