package org.rdzv.launcher;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.rdzv.api.Store;

/**
 * The agents' conversation on the round store: rank assignment and the exit barrier, with PyTorch
 * 1.13's keys (reference §9.2, §9.6).
 */
final class AgentStoreProtocol {
  static final String ROLE_INFO_PREFIX = "torchelastic/role_info";
  static final String TERMINAL_STATE_PREFIX = "torchelastic/agent/terminal_state";

  /** PyTorch 1.13 gathers role infos with the store timeout set to 300 s. */
  static final Duration SHARE_TIMEOUT = Duration.ofSeconds(300);

  private AgentStoreProtocol() {}

  /**
   * Writes this agent's role info and reads everybody's: PyTorch 1.13's {@code _share_and_gather}.
   */
  static List<RoleInfo> shareAndGather(Store store, RoleInfo mine, int worldSize) {
    List<byte[]> values =
        synchronize(store, mine.encode(), mine.rank(), worldSize, ROLE_INFO_PREFIX, SHARE_TIMEOUT);
    List<RoleInfo> infos = new ArrayList<>(values.size());
    for (int i = 0; i < values.size(); i++) {
      infos.add(RoleInfo.decode(values.get(i), i));
    }
    return infos;
  }

  /**
   * PyTorch's {@code store_util.synchronize}: set {@code prefix<rank>}, read every {@code
   * prefix<i>}, set {@code prefix<rank>.FIN}; rank 0 also waits for every {@code .FIN}, because it
   * may host the store and must leave last.
   */
  static List<byte[]> synchronize(
      Store store, byte[] data, int rank, int worldSize, String prefix, Duration timeout) {
    store.set(prefix + rank, data);
    List<byte[]> all = new ArrayList<>(worldSize);
    for (int i = 0; i < worldSize; i++) {
      store.await(List.of(prefix + i), timeout);
      all.add(store.get(prefix + i));
    }
    store.set(prefix + rank + ".FIN", "FIN".getBytes(StandardCharsets.US_ASCII));
    if (rank == 0) {
      for (int i = 0; i < worldSize; i++) {
        store.await(List.of(prefix + i + ".FIN"), timeout);
        store.get(prefix + i + ".FIN");
      }
    }
    return all;
  }

  /**
   * PyTorch 1.13's exit barrier: wait (up to {@code timeout}) until every agent's workers have
   * ended, so that the agent hosting a store leaves last.
   *
   * @throws org.rdzv.api.StoreException if the barrier times out or the store fails
   */
  static void exitBarrier(Store store, int rank, int worldSize, Duration timeout) {
    synchronize(
        store,
        Integer.toString(rank).getBytes(StandardCharsets.UTF_8),
        rank,
        worldSize,
        TERMINAL_STATE_PREFIX,
        timeout);
  }
}
