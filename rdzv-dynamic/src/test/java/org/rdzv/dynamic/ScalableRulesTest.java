package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousClosedException;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.RendezvousTimeoutException;

/**
 * The scalable protocol's rules, one node on a fake clock: the store plays the other nodes when the
 * node waits, and a wait nobody answers moves the clock by its whole timeout.
 */
class ScalableRulesTest {
  private final FakeClock clock = new FakeClock();
  private final MemoryScalableStore store = new MemoryScalableStore(clock);

  private ScalableHandler node(String host, int min, int max, Map<String, Object> extra) {
    Map<String, Object> conf = new HashMap<>(Map.of("protocol", "scalable"));
    conf.putAll(extra);
    RendezvousSettings settings =
        RendezvousSettings.from(
            new RendezvousParameters("c10d", "localhost:0", "job", min, max, null, conf));
    ScalableHandler h =
        new ScalableHandler(store, null, settings, new NodeDescriptor(host, 1, 0), clock, "c10d");
    h.heartbeatsEnabled = false;
    return h;
  }

  /** Another node that took ticket {@code t} of round 0 and wrote its descriptor. */
  private void other(String host) {
    long t = store.enter("r0/joined");
    store.set("r0/n/" + t, (host + "_7_0").getBytes());
  }

  @Test
  void theMaxthTicketSealsTheRoundAndRanksHostsInNaturalOrder() {
    other("node10");
    other("node9");
    try (ScalableHandler h = node("node2", 3, 3, Map.of())) {
      RendezvousInfo info = h.nextRendezvous();
      assertThat(info.worldSize()).isEqualTo(3);
      assertThat(info.rank()).isEqualTo(0);
      assertThat(store.text("r0/rank/1")).isEqualTo("2 3 3"); // node10
      assertThat(store.text("r0/rank/2")).isEqualTo("1 3 3"); // node9
      assertThat(store.tally("r0/joined"))
          .isEqualTo(new org.rdzv.dynamic.spi.ScalableStore.Tally(3, true));
      assertThat(store.text("r0/size")).isEqualTo("3");
      assertThat(store.text("r0/master")).startsWith("node2 ");
    }
  }

  @Test
  void pytorchRankOrderIsTheStringOrder() {
    other("node10");
    try (ScalableHandler h = node("node9", 2, 2, Map.of("rank_order", "pytorch"))) {
      assertThat(h.nextRendezvous().rank()).isEqualTo(1);
      assertThat(store.text("r0/rank/1")).isEqualTo("0 2 2");
    }
  }

  @Test
  void theMinthTicketSetsTheLastCallAndTheRoundSealsWhenItPasses() {
    other("a");
    long start = clock.nanoTime();
    try (ScalableHandler h = node("b", 2, 4, Map.of("last_call_timeout", "7"))) {
      RendezvousInfo info = h.nextRendezvous();
      assertThat(info.worldSize()).isEqualTo(2);
      long waited = clock.nanoTime() - start;
      assertThat(Duration.ofNanos(waited)).isBetween(Duration.ofSeconds(7), Duration.ofSeconds(8));
      assertThat(store.text("r0/deadline")).isNotNull();
    }
  }

  @Test
  void aRoundThatNeverReachesMinTimesOutAndLeavesATombstone() {
    try (ScalableHandler h = node("a", 2, 2, Map.of("join_timeout", "30"))) {
      assertThatThrownBy(h::nextRendezvous)
          .isInstanceOf(RendezvousTimeoutException.class)
          .hasMessageContaining("join timeout of 30 s");
      assertThat(store.get("r0/n/1")).isEmpty();
    }
  }

  @Test
  void aNodeFindingTheRoundSealedWaitsForTheNextAndIsCountedWaiting() {
    other("a");
    other("b");
    store.seal("r0/joined");
    long[] waitingSeen = {-1};
    store.onAwait =
        key -> {
          if (key.equals("r1/open")) {
            waitingSeen[0] = store.add("r0/waiting", 0);
            store.add("round", 1);
            store.set("r1/open", "1".getBytes());
          }
        };
    try (ScalableHandler h = node("c", 1, 3, Map.of("last_call_timeout", "1"))) {
      RendezvousInfo info = h.nextRendezvous();
      assertThat(waitingSeen[0]).isEqualTo(1);
      assertThat(info.round()).isEqualTo(1);
      assertThat(info.worldSize()).isEqualTo(1);
    }
  }

  @Test
  void aNodeFindingAFullRoundIsRedundantNotWaiting() {
    other("a");
    other("b");
    store.seal("r0/joined");
    try (ScalableHandler h = node("c", 2, 2, Map.of("join_timeout", "5"))) {
      store.onAwait = key -> assertThat(store.add("r0/redundant", 0)).isEqualTo(1);
      assertThatThrownBy(h::nextRendezvous).isInstanceOf(RendezvousTimeoutException.class);
      assertThat(store.add("r0/waiting", 0)).isZero();
      assertThat(store.add("r0/redundant", 0)).isZero(); // left the count when it gave up
    }
  }

  @Test
  void aSealWhoseWinnerNeverAssignsIsTakenOverAfterTheKeepAliveBound() {
    other("a");
    store.onAwait =
        key -> {
          if (key.equals("r0/rank/2") && !store.tally("r0/joined").sealed()) {
            store.seal("r0/joined"); // a sealer that then died
          }
        };
    try (ScalableHandler h =
        node("b", 2, 3, Map.of("keep_alive_interval", "2", "keep_alive_max_attempt", "2"))) {
      long start = clock.nanoTime();
      RendezvousInfo info = h.nextRendezvous();
      assertThat(info.worldSize()).isEqualTo(2);
      assertThat(info.rank()).isEqualTo(1);
      assertThat(Duration.ofNanos(clock.nanoTime() - start))
          .isGreaterThanOrEqualTo(Duration.ofSeconds(4));
    }
  }

  @Test
  void comingBackLeavesTheRoundCountsWaitingAndTheLastLeaverOpensTheNext() {
    try (ScalableHandler h = node("a", 1, 1, Map.of())) {
      assertThat(h.nextRendezvous().round()).isZero();
      RendezvousInfo again = h.nextRendezvous();
      assertThat(again.round()).isEqualTo(1);
      assertThat(store.add("r0/waiting", 0)).isEqualTo(1);
      assertThat(store.add("r0/exited", 0)).isEqualTo(1);
      assertThat(store.text("r0/lost/1")).isEqualTo("a_1_0 left");
      assertThat(store.add("round", 0)).isEqualTo(1);
    }
  }

  @Test
  void aClosedRendezvousRefusesJoins() {
    try (ScalableHandler h = node("a", 1, 1, Map.of())) {
      h.setClosed();
      assertThat(h.isClosed()).isTrue();
      assertThatThrownBy(h::nextRendezvous).isInstanceOf(RendezvousClosedException.class);
    }
  }

  @Test
  void aRunIdWithAStateOfPyTorchsProtocolIsRefused() {
    MutableState theirs = new MutableState();
    theirs.round = 3;
    store.compatible = StateCodec.encode(theirs, StateDialect.V2_6);
    try (ScalableHandler h = node("a", 1, 1, Map.of())) {
      assertThatThrownBy(h::nextRendezvous)
          .isInstanceOf(RendezvousStateException.class)
          .hasMessageContaining("protocol=pytorch")
          .hasMessageContaining("same --rdzv-conf protocol");
    }
  }

  @Test
  void theFenceIsAClosedStateOfPyTorchsProtocol() {
    try (ScalableHandler h = node("a", 1, 1, Map.of())) {
      h.nextRendezvous();
    }
    StateSnapshot fence = StateSnapshot.decode(store.compatible);
    assertThat(fence.closed()).isTrue();
    assertThat(fence.round()).isEqualTo(ScalableHandler.FENCE_ROUND);
    assertThat(ScalableHandler.isFence(store.compatible)).isTrue();
  }

  @Test
  void aLeaverBeforeCompletionIsLeftOutOfTheRanks() {
    other("a");
    store.set("r0/n/1", new byte[0]); // it timed out and left a tombstone
    other("c");
    try (ScalableHandler h = node("b", 2, 3, Map.of())) {
      RendezvousInfo info = h.nextRendezvous();
      assertThat(info.worldSize()).isEqualTo(2);
      assertThat(store.text("r0/rank/1")).isEqualTo("-1 2 3");
      assertThat(info.rank()).isZero();
    }
  }
}
