package org.rdzv.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class RendezvousRegistryTest {
  @Test
  void builtInNamesAreAlwaysRegistered() {
    assertThat(RendezvousRegistry.withDefaults().names())
        .contains("c10d", "etcd", "etcd-v2", "etcd-v3", "static");
  }

  @Test
  void builtInWithoutItsModuleSaysWhichModuleIsMissing() {
    // rdzv-api's own tests run without rdzv-dynamic and rdzv-etcd on the class path.
    assertThatThrownBy(
            () -> RendezvousRegistry.handler(new RendezvousParameters("etcd-v2", "", "r", 1, 1)))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage(
            "The rendezvous backend 'etcd-v2' is built in, but its module rdzv-etcd is not on the"
                + " class path.");
  }

  @Test
  void pluginsAreDiscoveredThroughServiceLoaderAndTheFirstOfANameWins() {
    RendezvousRegistry registry = RendezvousRegistry.withDefaults();
    assertThat(registry.isRegistered("test-plugin")).isTrue();
    RendezvousHandler handler =
        registry.create(new RendezvousParameters("test-plugin", "", "r", 1, 1));
    assertThat(handler.backend()).isEqualTo("test-plugin");
  }

  @Test
  void theDefaultRegistryIsOneInstance() {
    assertThat(RendezvousRegistry.defaultRegistry()).isSameAs(RendezvousRegistry.defaultRegistry());
  }

  @Test
  void registeringAnEqualCreatorAgainIsFine() {
    RendezvousRegistry registry = new RendezvousRegistry();
    RendezvousHandlerCreator creator = p -> new TestHandlers.Named("x");
    registry.register("x", creator);
    registry.register("x", creator);
    assertThat(registry.names()).containsExactly("x");
  }
}
