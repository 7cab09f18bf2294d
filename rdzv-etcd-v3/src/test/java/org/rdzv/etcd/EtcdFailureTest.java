package org.rdzv.etcd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.testing.Await;
import org.rdzv.testing.EtcdProcess;
import org.rdzv.testing.FreePort;
import org.rdzv.testing.Peers;

/**
 * etcd failures: an unreachable endpoint, etcd dying under waiting nodes, a cluster losing a
 * member.
 */
class EtcdFailureTest {

  private static Map<String, String> config(String backend, int timeoutSeconds) {
    return backend.equals("etcd")
        ? Map.of(
            "timeout",
            Integer.toString(timeoutSeconds),
            "last_call_timeout",
            "1",
            "read_timeout",
            "3")
        : Map.of(
            "join_timeout",
            Integer.toString(timeoutSeconds),
            "last_call_timeout",
            "1",
            "read_timeout",
            "3");
  }

  @ParameterizedTest
  @ValueSource(strings = {"etcd", "etcd-v2", "etcd-v3"})
  void anUnreachableEndpointIsAConnectionErrorNamingIt(String backend) {
    String endpoint = "127.0.0.1:" + FreePort.next();
    long start = System.nanoTime();
    assertThatThrownBy(
            // Default options (read_timeout 60 s): refusal must still be reported at once.
            () ->
                RendezvousRegistry.handler(
                    new RendezvousParameters(backend, endpoint, "nobody", 1, 1)))
        .isInstanceOf(RendezvousConnectionException.class)
        .hasMessageContaining(endpoint);
    assertThat(System.nanoTime() - start).isLessThan(TimeUnit.SECONDS.toNanos(15));
  }

  @ParameterizedTest
  @ValueSource(strings = {"etcd", "etcd-v2", "etcd-v3"})
  void nodesWaitingWhenEtcdStopsFailWithAConnectionErrorWithinTheirTimeout(String backend)
      throws Exception {
    Peers.requireEtcdServer();
    try (EtcdProcess etcd = EtcdProcess.start()) {
      // min = max = 3 with two nodes: they wait for a third that never comes.
      RendezvousParameters params =
          new RendezvousParameters(
              backend,
              etcd.endpoint(),
              "stopped",
              3,
              3,
              config(backend, backend.equals("etcd") ? 8 : 20));
      JavaNodes nodes = JavaNodes.start(params, 2, false);
      awaitJoined(backend, params, 2);
      etcd.kill();
      long killed = System.nanoTime();
      for (CompletableFuture<JavaNodes.Outcome> outcome : nodes.outcomes) {
        Throwable failure = null;
        try {
          outcome.get(40, TimeUnit.SECONDS);
        } catch (ExecutionException e) {
          failure = e.getCause();
        }
        assertThat(failure)
            .as("a node must fail, not hang or succeed")
            .isInstanceOf(RendezvousConnectionException.class)
            .hasMessageContaining(etcd.endpoint());
      }
      // Within the join timeout (measured from the kill, with slack for the read timeout). The
      // legacy handler retries an unreachable etcd until its deadline, as PyTorch does, and then
      // reports the connection failure; the dynamic ones fail at their next etcd request.
      assertThat(System.nanoTime() - killed).isLessThan(TimeUnit.SECONDS.toNanos(25));
      nodes.handlers.forEach(EtcdBackendTest::closeQuietly);
    }
  }

  /** Waits until {@code count} nodes are in the state (by reading it as a status tool would). */
  private static void awaitJoined(String backend, RendezvousParameters params, int count) {
    Await.until(
        count + " nodes in the rendezvous",
        Duration.ofSeconds(30),
        () -> {
          if (backend.equals("etcd")) {
            return EtcdRendezvous.legacyState(params)
                .map(
                    s ->
                        PythonJson.parseObject(s).withArrayProperty("participants").size() == count)
                .orElse(false);
          }
          return EtcdRendezvous.readState(params)
              .map(s -> s.participants().size() == count)
              .orElse(false);
        });
  }

  @ParameterizedTest
  @ValueSource(strings = {"etcd", "etcd-v2", "etcd-v3"})
  void aRendezvousCompletesWhenAClusterMemberIsKilledDuringIt(String backend) throws Exception {
    Peers.requireEtcdServer();
    try (EtcdProcess.Cluster cluster = EtcdProcess.startCluster(3)) {
      RendezvousParameters params =
          new RendezvousParameters(
              backend, cluster.endpoints(), "cluster-" + backend, 3, 3, config(backend, 60));
      JavaNodes early = JavaNodes.start(params, 2, false);
      awaitJoined(backend, params, 2);
      // The first member is where every node sends its requests first.
      cluster.member(0).kill();
      JavaNodes late = JavaNodes.start(params, 1, false);
      List<JavaNodes.Outcome> outcomes =
          new java.util.ArrayList<>(early.await(Duration.ofSeconds(60)));
      outcomes.addAll(late.await(Duration.ofSeconds(60)));
      assertThat(outcomes).extracting(o -> o.info().rank()).containsExactlyInAnyOrder(0, 1, 2);
      assertThat(outcomes).allSatisfy(o -> assertThat(o.info().worldSize()).isEqualTo(3));
      early.handlers.forEach(EtcdBackendTest::closeQuietly);
      late.handlers.forEach(EtcdBackendTest::closeQuietly);
    }
  }

  @Test
  void optionsAreValidatedWithPyTorchsMessages() {
    assertThatThrownBy(
            () ->
                EtcdConnection.forLegacy(
                    new RendezvousParameters("etcd", "h", "r", 1, 1, Map.of("protocol", "HTTP"))))
        .hasMessage("The etcd protocol must be HTTP or HTTPS.");
    assertThat(
            EtcdConnection.forDynamic(
                    new RendezvousParameters(
                        "etcd-v2", "h", "r", 1, 1, Map.of("protocol", " HTTPS ")))
                .protocol())
        .isEqualTo("https");
    assertThatThrownBy(
            () ->
                EtcdConnection.forDynamic(
                    new RendezvousParameters(
                        "etcd-v2", "h", "r", 1, 1, Map.of("protocol", "grpc"))))
        .hasMessage("The protocol must be HTTP or HTTPS.");
    assertThatThrownBy(
            () ->
                EtcdConnection.forDynamic(
                    new RendezvousParameters(
                        "etcd-v2", "h", "r", 1, 1, Map.of("read_timeout", "0"))))
        .hasMessage("The read timeout must be a positive integer.");
    assertThat(EtcdConnection.parseEndpoints("h1:1,[::1]:2, h3 ").toString())
        .isEqualTo("[h1:1, [::1]:2, h3:2379]");
    assertThat(EtcdConnection.parseEndpoints("").get(0).toString()).isEqualTo("localhost:2379");
    assertThatThrownBy(() -> EtcdConnection.parseEndpoints("h1:1,,h2"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("empty item");
    assertThatThrownBy(() -> EtcdConnection.parseEndpoints("h1:99999"))
        .hasMessage(
            "The port number of the rendezvous endpoint 'h1:99999' must be an integer between 0 and 65536.");
    assertThatThrownBy(
            () -> RendezvousRegistry.handler(new RendezvousParameters("etcd-v2", "h:1", "", 1, 1)))
        .hasMessage("The run id must be a non-empty string.");
  }
}
