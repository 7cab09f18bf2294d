package org.rdzv.launcher;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.RendezvousTimeoutException;
import org.rdzv.api.Store;
import org.rdzv.api.StoreException;
import org.rdzv.api.StoreTimeoutException;

/**
 * The agents' conversation on the round store after each rendezvous: rank assignment and, at the
 * end, the exit barrier, in whichever of PyTorch's two agent protocols the round's peers speak
 * ({@link AgentProtocol}; reference §9.2, §9.6).
 *
 * <p><b>How the protocol is chosen.</b> The user never says. An rdzv agent writes its role info
 * under both protocols' keys, {@code torchelastic/role_info/<r>} first (with the {@code
 * agent_store} field, which no torchrun writes) and {@code torchelastic/role_info<r>} second, and
 * then looks at what its peers wrote:
 *
 * <ul>
 *   <li>only {@code role_info<i>}: a torchrun 1.13 agent (an rdzv agent would have written the
 *       other key first);
 *   <li>{@code role_info/<i>} without the field: a torchrun 2.x agent;
 *   <li>{@code role_info/<i>} with the field: an rdzv agent.
 * </ul>
 *
 * Agent 0 looks at every peer; a round with torchrun 1.13 agents uses 1.13's protocol, one with
 * torchrun 2.x agents 2.x's, and a round of rdzv agents only the one the caller prefers (the
 * PyTorch line its rendezvous speaks). A round cannot hold both torchrun lines (their rendezvous
 * states and agent keys differ; reference §1): agent 0 says so at once. Agent 0 writes its choice
 * under {@code torchelastic/rdzv/agent_protocol} for the rdzv agents; the others look at agent 0
 * alone: a torchrun agent 0 decides the protocol by what it is, an rdzv agent 0 by that key.
 *
 * <p>Every wait has a deadline and ends in a one-line {@link RendezvousTimeoutException} naming the
 * agent and the keys it did not write, never a silent hang.
 */
final class AgentStoreProtocol {
  private static final System.Logger LOG = System.getLogger(AgentStoreProtocol.class.getName());

  /** 1.13: {@code role_info<r>}, then {@code role_info<r>.FIN}. */
  static final String ROLE_INFO_PREFIX = "torchelastic/role_info";

  /** 2.x: {@code role_info/<r>}, read by agent 0. */
  static final String ROLE_INFO_V2_PREFIX = "torchelastic/role_info/";

  /** 2.x: {@code assigned_ranks/<r>}, written by agent 0. */
  static final String ASSIGNED_RANKS_PREFIX = "torchelastic/assigned_ranks/";

  /** 1.13: {@code terminal_state<r>} (and {@code .FIN}); 2.x: a counter and a flag under it. */
  static final String TERMINAL_STATE_PREFIX = "torchelastic/agent/terminal_state";

  static final String BARRIER_MEMBERS_KEY = TERMINAL_STATE_PREFIX + "/num_members";
  static final String BARRIER_LAST_KEY = TERMINAL_STATE_PREFIX + "/last_member";

  /** rdzv's own key: the protocol agent 0 chose, for the other rdzv agents of the round. */
  static final String CHOICE_KEY = "torchelastic/rdzv/agent_protocol";

  private static final String ERROR_CHOICE = "error: ";

  /** PyTorch 1.13 gathers role infos with the store timeout set to 300 s. */
  static final Duration SHARE_TIMEOUT = Duration.ofSeconds(300);

  private static final long MAX_POLL_NANOS = TimeUnit.MILLISECONDS.toNanos(20);

  /** How often a wait for other agents says what it waits for. */
  static final Duration PROGRESS_INTERVAL = Duration.ofSeconds(5);

  /** Who wrote a role info. */
  enum Peer {
    RDZV("an rdzv agent"),
    TORCHRUN_1_13("torchrun 1.13"),
    TORCHRUN_2("torchrun 2.x");

    private final String description;

    Peer(String description) {
      this.description = description;
    }
  }

  /**
   * The outcome of rank assignment.
   *
   * @param protocol the protocol of the round, which also decides the exit barrier and the workers'
   *     environment
   * @param ranks this agent's workers' ranks
   * @param everyAgentHostsStores whether every agent of the round is an rdzv agent willing to host
   *     the workers' store; known under 1.13 only (every agent reads every role info), {@code
   *     false} under 2.x
   */
  record Assignment(AgentProtocol protocol, Ranks ranks, boolean everyAgentHostsStores) {}

  private AgentStoreProtocol() {}

  /**
   * Assigns this agent's workers their ranks, in the protocol the round's peers speak.
   *
   * @param mine this agent's role info ({@code rank} is its group rank)
   * @param worldSize the number of agents
   * @param preferred the protocol of a round of rdzv agents only; used by agent 0
   * @param timeout how long to wait for each peer's keys (PyTorch 2.x waits the store timeout)
   * @throws RendezvousTimeoutException if a peer does not write what its protocol needs in time
   * @throws RendezvousStateException if torchrun 1.13 and 2.x agents meet, or a value is malformed
   * @throws StoreException if the store fails
   */
  static Assignment assign(
      Store store, RoleInfo mine, int worldSize, AgentProtocol preferred, Duration timeout) {
    int rank = mine.rank();
    // 2.x's key first: whoever sees our 1.13 key can count on the other being there.
    store.multiSet(
        List.of(ROLE_INFO_V2_PREFIX + rank, ROLE_INFO_PREFIX + rank),
        List.of(mine.encodeMarked(), mine.encode()));
    return rank == 0
        ? assignAsAgentZero(store, mine, worldSize, preferred, timeout)
        : assignAsPeer(store, rank, worldSize, timeout);
  }

  private static Assignment assignAsAgentZero(
      Store store, RoleInfo mine, int worldSize, AgentProtocol preferred, Duration timeout) {
    List<RoleInfo> infos = new ArrayList<>(worldSize);
    infos.add(mine);
    TreeMap<Peer, List<Integer>> kinds = new TreeMap<>();
    long deadline = System.nanoTime() + timeout.toNanos();
    for (int i = 1; i < worldSize; i++) {
      Identified peer = identify(store, i, deadline, timeout);
      infos.add(peer.info());
      kinds.computeIfAbsent(peer.kind(), k -> new ArrayList<>()).add(i);
      if (kinds.containsKey(Peer.TORCHRUN_1_13) && kinds.containsKey(Peer.TORCHRUN_2)) {
        // No need to wait for the rest: this round cannot work.
        String message =
            "agents "
                + kinds.get(Peer.TORCHRUN_1_13)
                + " are torchrun 1.13 and agents "
                + kinds.get(Peer.TORCHRUN_2)
                + " torchrun 2.x; their agent protocols cannot share a job";
        store.set(CHOICE_KEY, (ERROR_CHOICE + message).getBytes(StandardCharsets.UTF_8));
        throw new RendezvousStateException(message);
      }
    }
    AgentProtocol protocol =
        kinds.containsKey(Peer.TORCHRUN_1_13)
            ? AgentProtocol.V1_13
            : kinds.containsKey(Peer.TORCHRUN_2) ? AgentProtocol.V2 : preferred;
    LOG.log(
        System.Logger.Level.DEBUG,
        "agent protocol {0} for peers {1}",
        protocol.label(),
        kinds.toString());
    byte[] choice = protocol.label().getBytes(StandardCharsets.UTF_8);
    if (protocol == AgentProtocol.V2) {
      List<String> keys = new ArrayList<>(worldSize + 1);
      List<byte[]> values = new ArrayList<>(worldSize + 1);
      keys.add(CHOICE_KEY);
      values.add(choice);
      for (int i = 0; i < worldSize; i++) {
        keys.add(ASSIGNED_RANKS_PREFIX + i);
        values.add(Ranks.assign(infos, i).encode());
      }
      store.multiSet(keys, values);
      return new Assignment(AgentProtocol.V2, Ranks.assign(infos, 0), false);
    }
    store.set(CHOICE_KEY, choice);
    // 1.13's synchronize, agent 0's part: its .FIN, then everybody's, so that it leaves last.
    store.set(ROLE_INFO_PREFIX + "0.FIN", "FIN".getBytes(StandardCharsets.US_ASCII));
    for (int i = 0; i < worldSize; i++) {
      awaitKey(store, ROLE_INFO_PREFIX + i + ".FIN", i, "torchrun 1.13's", SHARE_TIMEOUT);
    }
    return new Assignment(
        AgentProtocol.V1_13, Ranks.assign(infos, 0), infos.stream().allMatch(RoleInfo::agentStore));
  }

  private static Assignment assignAsPeer(Store store, int rank, int worldSize, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    Peer zero = identify(store, 0, deadline, timeout).kind();
    AgentProtocol protocol =
        switch (zero) {
          case TORCHRUN_1_13 -> AgentProtocol.V1_13;
          case TORCHRUN_2 -> AgentProtocol.V2;
          case RDZV -> {
            String choice =
                new String(
                    awaitKey(store, CHOICE_KEY, 0, "rdzv's", remaining(deadline)),
                    StandardCharsets.UTF_8);
            if (choice.startsWith(ERROR_CHOICE)) {
              throw new RendezvousStateException(choice.substring(ERROR_CHOICE.length()));
            }
            yield choice.equals(AgentProtocol.V2.label()) ? AgentProtocol.V2 : AgentProtocol.V1_13;
          }
        };
    if (protocol == AgentProtocol.V2) {
      byte[] assigned =
          awaitKey(store, ASSIGNED_RANKS_PREFIX + rank, 0, "torchrun 2.x's", remaining(deadline));
      return new Assignment(AgentProtocol.V2, Ranks.decode(assigned, rank), false);
    }
    // 1.13's synchronize, a peer's part: read every role info, then say so with .FIN.
    List<RoleInfo> infos = new ArrayList<>(worldSize);
    for (int i = 0; i < worldSize; i++) {
      infos.add(
          RoleInfo.decode(
              awaitKey(store, ROLE_INFO_PREFIX + i, i, "torchrun 1.13's", SHARE_TIMEOUT), i));
    }
    store.set(ROLE_INFO_PREFIX + rank + ".FIN", "FIN".getBytes(StandardCharsets.US_ASCII));
    return new Assignment(
        AgentProtocol.V1_13,
        Ranks.assign(infos, rank),
        infos.stream().allMatch(RoleInfo::agentStore));
  }

  private record Identified(Peer kind, RoleInfo info) {}

  /**
   * Waits until agent {@code i} has written a role info under either protocol's key, and tells who
   * wrote it. Polls: a store can wait for all of several keys, not for any of them. The pause grows
   * from 1 ms to 20 ms, so a peer that is already there costs one round trip.
   */
  private static Identified identify(Store store, int i, long deadline, Duration timeout) {
    String v2 = ROLE_INFO_V2_PREFIX + i;
    String v1 = ROLE_INFO_PREFIX + i;
    long pause = TimeUnit.MILLISECONDS.toNanos(1);
    long nextNote = System.nanoTime() + PROGRESS_INTERVAL.toNanos();
    while (true) {
      if (store.check(List.of(v2))) {
        byte[] data = store.get(v2);
        return new Identified(
            RoleInfo.isMarked(data) ? Peer.RDZV : Peer.TORCHRUN_2, RoleInfo.decode(data, i));
      }
      // An rdzv agent writes the 2.x key before the 1.13 one: the 1.13 key alone, with the 2.x
      // key still missing after it was seen, is a torchrun 1.13 agent.
      if (store.check(List.of(v1)) && !store.check(List.of(v2))) {
        return new Identified(Peer.TORCHRUN_1_13, RoleInfo.decode(store.get(v1), i));
      }
      long left = deadline - System.nanoTime();
      if (left > 0 && System.nanoTime() - nextNote >= 0) {
        nextNote = System.nanoTime() + PROGRESS_INTERVAL.toNanos();
        LOG.log(
            System.Logger.Level.INFO,
            "rank assignment: waiting for agent {0} to write its role info ({1} or {2}); {3} left",
            String.valueOf(i),
            v2,
            v1,
            seconds(Duration.ofSeconds(Math.max(0, left / 1_000_000_000L))));
      }
      if (left <= 0) {
        throw new RendezvousTimeoutException(
            "agent "
                + i
                + " wrote no role info within "
                + seconds(timeout)
                + ": neither "
                + v1
                + " (torchrun 1.13's agent protocol) nor "
                + v2
                + " (torchrun 2.x's); is it an elastic agent of this round?");
      }
      try {
        TimeUnit.NANOSECONDS.sleep(Math.min(pause, left));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new StoreException("interrupted while waiting for agent " + i, e);
      }
      pause = Math.min(pause * 2, MAX_POLL_NANOS);
    }
  }

  /**
   * Reads {@code key}, saying every {@link #PROGRESS_INTERVAL} what it waits for, and turning a
   * timeout into one line naming the agent that should write it.
   */
  private static byte[] awaitKey(
      Store store, String key, int writer, String protocol, Duration timeout) {
    try {
      awaitWithProgress(
          store,
          key,
          timeout,
          () ->
              "waiting for agent " + writer + " to write " + key + " (" + protocol + " protocol)");
      return store.get(key);
    } catch (StoreTimeoutException e) {
      throw new RendezvousTimeoutException(
          "agent "
              + writer
              + " did not write "
              + key
              + " ("
              + protocol
              + " agent protocol) within "
              + seconds(timeout),
          e);
    }
  }

  /**
   * {@code store.await(key)} in slices of {@link #PROGRESS_INTERVAL}, logging {@code what} (and the
   * time left) after each slice that ends without the key.
   *
   * @throws StoreTimeoutException when {@code timeout} passes
   */
  static void awaitWithProgress(
      Store store, String key, Duration timeout, java.util.function.Supplier<String> what) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      long left = deadline - System.nanoTime();
      long slice = Math.min(left, PROGRESS_INTERVAL.toNanos());
      try {
        store.await(List.of(key), Duration.ofNanos(Math.max(1_000_000, slice)));
        return;
      } catch (StoreTimeoutException e) {
        left = deadline - System.nanoTime();
        if (left <= 0) {
          throw e;
        }
        LOG.log(
            System.Logger.Level.INFO,
            "{0}; {1} left",
            what.get(),
            seconds(Duration.ofSeconds(Math.max(0, left / 1_000_000_000L))));
      }
    }
  }

  private static Duration remaining(long deadline) {
    return Duration.ofNanos(Math.max(1_000_000, deadline - System.nanoTime()));
  }

  private static String seconds(Duration d) {
    return d.toMillis() % 1000 == 0 ? d.toSeconds() + " s" : d.toMillis() / 1000.0 + " s";
  }

  /**
   * The exit barrier: wait (up to {@code timeout}) until every agent's workers have ended, so that
   * an agent hosting a store leaves last.
   *
   * <ul>
   *   <li>1.13: {@code synchronize} on {@code terminal_state<r>}: set it, read every agent's, set
   *       {@code .FIN}; agent 0 also reads every {@code .FIN};
   *   <li>2.x: add 1 to {@code terminal_state/num_members}; the agent that makes it the world size
   *       sets {@code terminal_state/last_member}; everyone waits for that key.
   * </ul>
   *
   * @throws StoreException if the barrier times out or the store fails
   */
  static void exitBarrier(
      AgentProtocol protocol, Store store, int rank, int worldSize, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    if (protocol == AgentProtocol.V2) {
      long arrived = store.add(BARRIER_MEMBERS_KEY, 1);
      if (arrived == worldSize) {
        store.set(BARRIER_LAST_KEY, "<val_ignored>".getBytes(StandardCharsets.US_ASCII));
      }
      try {
        awaitWithProgress(
            store,
            BARRIER_LAST_KEY,
            timeout,
            () -> "exit barrier: " + finished(store, worldSize) + "; waiting for the others");
      } catch (StoreTimeoutException e) {
        throw new StoreTimeoutException(
            "exit barrier: " + finished(store, worldSize) + " within " + seconds(timeout), e);
      }
      return;
    }
    String me = Integer.toString(rank);
    store.set(TERMINAL_STATE_PREFIX + me, me.getBytes(StandardCharsets.UTF_8));
    awaitAgents(store, "", worldSize, deadline, timeout);
    store.set(TERMINAL_STATE_PREFIX + me + ".FIN", "FIN".getBytes(StandardCharsets.US_ASCII));
    if (rank == 0) {
      awaitAgents(store, ".FIN", worldSize, deadline, timeout);
    }
  }

  /** 2.x: {@code 2 of 3 agents finished}, from the barrier's counter. */
  private static String finished(Store store, int worldSize) {
    try {
      return store.add(BARRIER_MEMBERS_KEY, 0) + " of " + worldSize + " agents finished";
    } catch (StoreException e) {
      return "? of " + worldSize + " agents finished";
    }
  }

  /** 1.13: waits for {@code terminal_state<i><suffix>} of every agent, naming those missing. */
  private static void awaitAgents(
      Store store, String suffix, int worldSize, long deadline, Duration timeout) {
    for (int i = 0; i < worldSize; i++) {
      String key = TERMINAL_STATE_PREFIX + i + suffix;
      try {
        awaitWithProgress(
            store,
            key,
            remaining(deadline),
            () -> "exit barrier: waiting for agents " + missing(store, suffix, worldSize));
      } catch (StoreTimeoutException e) {
        throw new StoreTimeoutException(
            "exit barrier: agents "
                + missing(store, suffix, worldSize)
                + " of "
                + worldSize
                + " did not finish within "
                + seconds(timeout),
            e);
      }
      store.get(key);
    }
  }

  /** The agents whose {@code terminal_state<i><suffix>} is not there yet. */
  private static List<Integer> missing(Store store, String suffix, int worldSize) {
    List<Integer> missing = new ArrayList<>();
    for (int i = 0; i < worldSize && missing.size() < 16; i++) {
      if (!store.check(List.of(TERMINAL_STATE_PREFIX + i + suffix))) {
        missing.add(i);
      }
    }
    return missing;
  }
}
