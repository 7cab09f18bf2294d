package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.RendezvousTimeoutException;

/**
 * Which dialect a node writes: the stored state's, else configuration's, else the store family's,
 * else 2.6+; a node whose configuration pins a dialect refuses a state of another.
 */
class DialectRuleTest {
  final FakeClock clock = new FakeClock();
  final MemoryBackend backend = new MemoryBackend(clock);

  static RendezvousSettings settings(Map<String, Object> config) {
    Map<String, Object> all = new HashMap<>(config);
    all.putIfAbsent("last_call_timeout", "1");
    all.putIfAbsent("join_timeout", "10");
    return RendezvousSettings.from(new RendezvousParameters("c10d", "", "run", 1, 2, null, all));
  }

  Executor executor(NodeDescriptor node, RendezvousSettings s) {
    return new Executor(node, new StateHolder(backend, s, clock), s, clock);
  }

  long deadline(Duration d) {
    return clock.nanoTime() + d.toNanos();
  }

  @Test
  void theDefaultIs26AndConfigurationPinsADialect() {
    RendezvousSettings none = settings(Map.of());
    assertThat(none.dialect()).isEqualTo(StateDialect.V2_6);
    assertThat(none.dialectPinned()).isFalse();
    assertThat(settings(Map.of("store_protocol", "auto")).dialectPinned()).isFalse();
    assertThat(settings(Map.of("state_dialect", "auto")).dialectPinned()).isFalse();

    RendezvousSettings v113 = settings(Map.of("store_protocol", "1.13"));
    assertThat(v113.dialect()).isEqualTo(StateDialect.V1_13);
    assertThat(v113.dialectOrigin()).isEqualTo("store_protocol=1.13");
    assertThat(settings(Map.of("store_protocol", "v1")).dialect()).isEqualTo(StateDialect.V1_13);
    assertThat(settings(Map.of("store_protocol", "2")).dialect()).isEqualTo(StateDialect.V2_6);
    // state_dialect is the finer key and wins
    RendezvousSettings both = settings(Map.of("store_protocol", "2", "state_dialect", "2.4"));
    assertThat(both.dialect()).isEqualTo(StateDialect.V2_0);
    assertThat(both.dialectOrigin()).isEqualTo("state_dialect=2.4");
    assertThatThrownBy(() -> settings(Map.of("store_protocol", "3")))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("store_protocol must be one of auto, 1.13, 2");
  }

  @Test
  void theStoreFamilyDecidesOnlyWhatConfigurationLeavesOpen() {
    assertThat(settings(Map.of()).withDefaultDialect(StateDialect.V1_13).dialect())
        .isEqualTo(StateDialect.V1_13);
    assertThat(
            settings(Map.of("state_dialect", "2.6+"))
                .withDefaultDialect(StateDialect.V1_13)
                .dialect())
        .isEqualTo(StateDialect.V2_6);
  }

  @Test
  void aNodeWithoutConfigurationCreates26() {
    NodeDescriptor me = new NodeDescriptor("a", 1, 0);
    executor(me, settings(Map.of())).run(Ops.JOIN, deadline(Duration.ofSeconds(10)), true);
    MutableState s = backend.read();
    assertThat(s.dialect).isEqualTo(StateDialect.V2_6);
    assertThat(s.participants).containsKey(me);
  }

  @Test
  void anUnpinnedNodeAdoptsTheStoredDialect() {
    MutableState other = new MutableState();
    NodeDescriptor b = new NodeDescriptor("b", 2, 0);
    other.participants.put(b, 0);
    other.lastHeartbeats.put(b, clock.wallNow());
    backend.put(other, StateDialect.V1_13);
    NodeDescriptor me = new NodeDescriptor("a", 1, 0);
    executor(me, settings(Map.of())).run(Ops.JOIN, deadline(Duration.ofSeconds(10)), true);
    MutableState s = backend.read();
    assertThat(s.dialect).isEqualTo(StateDialect.V1_13);
    assertThat(s.participants).containsKeys(me, b);
  }

  @Test
  void aStateWithoutNodesStillTellsItsFamily() {
    // Every node left: nothing but the redundancy list tells 2.x (2.3+ always writes one) from
    // 1.13 (never does).
    backend.put(new MutableState(), StateDialect.V1_13);
    StateHolder h113 = new StateHolder(backend, settings(Map.of()), clock);
    h113.sync();
    assertThat(h113.state().dialect).isNull();
    assertThat(h113.dialect()).isEqualTo(StateDialect.V1_13);

    backend.put(new MutableState(), StateDialect.V2_6);
    StateHolder h2 = new StateHolder(backend, settings(Map.of("state_dialect", "2.0-2.5")), clock);
    h2.sync();
    assertThat(h2.state().dialectProven).isFalse();
    assertThat(h2.dialect()).isEqualTo(StateDialect.V2_0);
    h2.checkDialect(); // nothing proves the state is not 2.0-2.5
    StateHolder unpinned = new StateHolder(backend, settings(Map.of()), clock);
    unpinned.sync();
    assertThat(unpinned.dialect()).isEqualTo(StateDialect.V2_6);
  }

  @Test
  void aPinnedNodeRefusesAStateOfAnotherDialectAtOnce() {
    MutableState other = new MutableState();
    NodeDescriptor b = new NodeDescriptor("b", 2, 0);
    other.participants.put(b, 0);
    other.lastHeartbeats.put(b, clock.wallNow());
    backend.put(other, StateDialect.V2_6);
    NodeDescriptor me = new NodeDescriptor("a", 1, 0);
    long start = clock.nanoTime();
    assertThatThrownBy(
            () ->
                executor(me, settings(Map.of("store_protocol", "1.13")))
                    .run(Ops.JOIN, deadline(Duration.ofSeconds(10)), true))
        .isInstanceOf(RendezvousStateException.class)
        .hasMessage(
            "The rendezvous 'run' holds a state in the 2.6+ (PyTorch 2.6 and newer) dialect, but"
                + " this node is configured for the 1.13 (PyTorch 1.13) dialect"
                + " (store_protocol=1.13); the nodes of one rendezvous must share a dialect: set"
                + " state_dialect=2.6+ to join it, or use another run id.");
    assertThat(clock.nanoTime()).isEqualTo(start);
    assertThat(backend.read().participants).containsOnlyKeys(b); // nothing written
  }

  @Test
  void aJoinTimeoutSaysWhichPyTorchCannotReadTheState() {
    NodeDescriptor me = new NodeDescriptor("a", 1, 0);
    RendezvousSettings s =
        RendezvousSettings.from(
            new RendezvousParameters("c10d", "", "run", 2, 2, null, Map.of("join_timeout", "3")));
    assertThatThrownBy(() -> executor(me, s).run(Ops.JOIN, deadline(Duration.ofSeconds(3)), true))
        .isInstanceOf(RendezvousTimeoutException.class)
        .hasMessage(
            "The rendezvous 'run' operation timed out. 1 of at least 2 nodes joined; if PyTorch"
                + " 1.13 nodes are among the missing, they cannot read a state in the 2.6+ dialect"
                + " (for 1.13 nodes"
                + " set store_protocol=1.13 on every rdzv node).");
  }
}
