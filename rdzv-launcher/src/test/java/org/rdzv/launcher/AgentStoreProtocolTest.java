package org.rdzv.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;
import org.rdzv.api.PrefixStore;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.RendezvousTimeoutException;
import org.rdzv.api.Store;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.testing.PythonProcess;
import org.rdzv.testing.Torch;

/**
 * The agents' store protocol on a real store: rdzv agents alone, and rdzv agents with PyTorch's own
 * agent code (1.13 and 2.6: {@code _assign_worker_ranks} and the exit barrier) in one round,
 * whichever side is agent 0.
 */
@Timeout(120)
class AgentStoreProtocolTest {
  private static final String ROUND = "torch.rendezvous.job.0";
  private static final Duration TIMEOUT = Duration.ofSeconds(60);

  /** Three agents with different roles and sizes, so that every rank sum is visible. */
  private static final List<RoleInfo> AGENTS =
      List.of(
          new RoleInfo("trainer", 0, 2, true),
          new RoleInfo("ps", 1, 1, true),
          new RoleInfo("trainer", 2, 3, true));

  private final TcpStoreServer server = TcpStoreServer.start("127.0.0.1", 0);
  private final List<TcpStore> clients = new ArrayList<>();

  @AfterEach
  void close() {
    clients.forEach(TcpStore::close);
    server.close();
  }

  private Store roundStore() {
    TcpStore client = TcpStore.connect("127.0.0.1", server.port());
    clients.add(client);
    return new PrefixStore(ROUND, client);
  }

  private CompletableFuture<AgentStoreProtocol.Assignment> java(
      RoleInfo mine, AgentProtocol preferred) {
    Store store = roundStore();
    return GlooWorkersTest.async(
        () -> {
          AgentStoreProtocol.Assignment a =
              AgentStoreProtocol.assign(store, mine, AGENTS.size(), preferred, TIMEOUT);
          AgentStoreProtocol.exitBarrier(a.protocol(), store, mine.rank(), AGENTS.size(), TIMEOUT);
          return a;
        });
  }

  private static AgentStoreProtocol.Assignment get(
      CompletableFuture<AgentStoreProtocol.Assignment> f) throws Exception {
    return f.get(90, TimeUnit.SECONDS);
  }

  @ParameterizedTest
  @EnumSource(AgentProtocol.class)
  void rdzvAgentsAloneSpeakThePreferredProtocol(AgentProtocol preferred) throws Exception {
    List<CompletableFuture<AgentStoreProtocol.Assignment>> runs = new ArrayList<>();
    for (RoleInfo agent : AGENTS) {
      runs.add(java(agent, preferred));
    }
    for (int i = 0; i < AGENTS.size(); i++) {
      AgentStoreProtocol.Assignment a = get(runs.get(i));
      assertThat(a.protocol()).isEqualTo(preferred);
      assertThat(a.ranks()).isEqualTo(Ranks.assign(AGENTS, i));
      // Under 1.13 every agent reads every role info, so it knows all can host the store.
      assertThat(a.everyAgentHostsStores()).isEqualTo(preferred == AgentProtocol.V1_13);
    }
    Store observer = roundStore();
    if (preferred == AgentProtocol.V2) {
      assertThat(observer.getString("torchelastic/assigned_ranks/2")).isEqualTo("[3, 6, 2, 5]");
      assertThat(observer.add("torchelastic/agent/terminal_state/num_members", 0)).isEqualTo(3);
      assertThat(observer.check(List.of("torchelastic/role_info0.FIN"))).isFalse();
    } else {
      assertThat(
              observer.check(
                  List.of("torchelastic/role_info2.FIN", "torchelastic/agent/terminal_state0.FIN")))
          .isTrue();
      assertThat(observer.check(List.of("torchelastic/assigned_ranks/0"))).isFalse();
    }
  }

  static Stream<Arguments> torchAndItsGroupRank() {
    return Stream.of(Torch.values())
        .flatMap(t -> Stream.of(Arguments.of(t, 0), Arguments.of(t, 1)));
  }

  /**
   * A torchrun agent of {@code torch} at group rank {@code pythonRank}, rdzv agents elsewhere: all
   * agree on the ranks, the protocol is torchrun's, and every agent passes the exit barrier.
   */
  @ParameterizedTest(name = "{0} as agent {1}")
  @MethodSource("torchAndItsGroupRank")
  void rdzvAgentsSpeakWhatATorchrunAgentOfTheRoundSpeaks(Torch torch, int pythonRank)
      throws Exception {
    torch.require();
    AgentProtocol expected = torch.is2x() ? AgentProtocol.V2 : AgentProtocol.V1_13;
    RoleInfo theirs = AGENTS.get(pythonRank);
    List<CompletableFuture<AgentStoreProtocol.Assignment>> runs = new ArrayList<>();
    try (PythonProcess python =
        PythonProcess.start(
            torch,
            PythonProcess.resource(getClass(), "/py/agent_protocol.py"),
            List.of(
                "127.0.0.1",
                "" + server.port(),
                ROUND,
                "" + pythonRank,
                "" + AGENTS.size(),
                theirs.role(),
                "" + theirs.localWorldSize()),
            Map.of())) {
      for (RoleInfo agent : AGENTS) {
        // The preferred protocol is the other one: what the torchrun agent speaks must win.
        runs.add(
            agent.rank() == pythonRank
                ? null
                : java(agent, torch.is2x() ? AgentProtocol.V1_13 : AgentProtocol.V2));
      }
      for (int i = 0; i < AGENTS.size(); i++) {
        if (i == pythonRank) {
          continue;
        }
        AgentStoreProtocol.Assignment a = get(runs.get(i));
        assertThat(a.protocol()).as(python.output()).isEqualTo(expected);
        assertThat(a.ranks()).isEqualTo(Ranks.assign(AGENTS, i));
        assertThat(a.everyAgentHostsStores()).isFalse();
      }
      Ranks ranks = Ranks.assign(AGENTS, pythonRank);
      python.awaitLine(
          l ->
              l.equals(
                  "RANKS "
                      + ranks.base()
                      + " "
                      + ranks.worldSize()
                      + " "
                      + ranks.roleBase()
                      + " "
                      + ranks.roleWorldSize()),
          Duration.ofSeconds(60));
      python.awaitLine(l -> l.equals("BARRIER done"), Duration.ofSeconds(60));
      assertThat(python.awaitExit(Duration.ofSeconds(30))).as(python.output()).isZero();
    }
  }

  @Test
  void torchrun113AndTorchrun2AgentsInOneRoundAreAClearErrorForEveryRdzvAgent() throws Exception {
    Torch.V1_13.require();
    Torch.V2_6.require();
    String script = PythonProcess.resource(getClass(), "/py/agent_protocol.py");
    try (PythonProcess old = peer(Torch.V1_13, script, 1);
        PythonProcess current = peer(Torch.V2_6, script, 2)) {
      Store zero = roundStore();
      assertThatThrownBy(
              () ->
                  AgentStoreProtocol.assign(
                      zero, new RoleInfo("trainer", 0, 1, true), 4, AgentProtocol.V2, TIMEOUT))
          .isInstanceOf(RendezvousStateException.class)
          .hasMessage(
              "agents [1] are torchrun 1.13 and agents [2] torchrun 2.x; their agent protocols cannot share a job");
      // Agent 3 is an rdzv agent too: it learns the same from agent 0 at once.
      assertThatThrownBy(
              () ->
                  AgentStoreProtocol.assign(
                      roundStore(),
                      new RoleInfo("trainer", 3, 1, true),
                      4,
                      AgentProtocol.V2,
                      TIMEOUT))
          .isInstanceOf(RendezvousStateException.class)
          .hasMessageContaining("their agent protocols cannot share a job");
    }
  }

  private PythonProcess peer(Torch torch, String script, int rank) {
    return PythonProcess.start(
        torch,
        script,
        List.of("127.0.0.1", "" + server.port(), ROUND, "" + rank, "4", "trainer", "1"),
        Map.of());
  }

  @Test
  void aPeerThatWritesNoRoleInfoIsNamedWithBothProtocolsKeys() {
    long start = System.nanoTime();
    assertThatThrownBy(
            () ->
                AgentStoreProtocol.assign(
                    roundStore(),
                    new RoleInfo("trainer", 0, 1, true),
                    2,
                    AgentProtocol.V2,
                    Duration.ofSeconds(1)))
        .isInstanceOf(RendezvousTimeoutException.class)
        .hasMessage(
            "agent 1 wrote no role info within 1 s: neither torchelastic/role_info1 (torchrun"
                + " 1.13's agent protocol) nor torchelastic/role_info/1 (torchrun 2.x's); is it an"
                + " elastic agent of this round?");
    assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(30));
  }

  @Test
  void anAgentZeroThatAssignsNoRanksIsNamed() {
    // Agent 0 wrote its 2.x role info as torchrun 2.x does (no rdzv field) and then died.
    Store store = roundStore();
    store.set(
        "torchelastic/role_info/0",
        "{\"role\": \"trainer\", \"rank\": 0, \"local_world_size\": 1}");
    assertThatThrownBy(
            () ->
                AgentStoreProtocol.assign(
                    roundStore(),
                    new RoleInfo("trainer", 1, 1, true),
                    2,
                    AgentProtocol.V1_13,
                    Duration.ofSeconds(1)))
        .isInstanceOf(RendezvousTimeoutException.class)
        .hasMessageStartingWith(
            "agent 0 did not write torchelastic/assigned_ranks/1 (torchrun 2.x's agent protocol)"
                + " within");
  }

  /** An exit barrier that times out says which agents (1.13) or how many (2.x) did not finish. */
  @ParameterizedTest
  @EnumSource(AgentProtocol.class)
  void anExitBarrierTimeoutSaysWhoIsMissing(AgentProtocol protocol) throws Exception {
    // Agents 0 and 1 of three arrive; agent 2 never does.
    CompletableFuture<Throwable> zero = barrier(protocol, 0);
    CompletableFuture<Throwable> one = barrier(protocol, 1);
    String expected =
        protocol == AgentProtocol.V2
            ? "exit barrier: 2 of 3 agents finished within 2 s"
            : "exit barrier: agents [2] of 3 did not finish within 2 s";
    assertThat(zero.get(60, TimeUnit.SECONDS)).hasMessage(expected);
    assertThat(one.get(60, TimeUnit.SECONDS)).hasMessage(expected);
  }

  private CompletableFuture<Throwable> barrier(AgentProtocol protocol, int rank) {
    Store store = roundStore();
    return GlooWorkersTest.async(
        () -> {
          try {
            AgentStoreProtocol.exitBarrier(protocol, store, rank, 3, Duration.ofSeconds(2));
            return null;
          } catch (RuntimeException e) {
            return e;
          }
        });
  }
}
