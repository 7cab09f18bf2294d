package org.rdzv.launcher;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.rdzv.api.RendezvousStateException;

/**
 * Global and role ranks of one agent's workers (reference §9.3): its workers are global ranks
 * {@code base .. base + n - 1} of {@code worldSize}, and role ranks {@code roleBase ..} of {@code
 * roleWorldSize}.
 */
record Ranks(int base, int worldSize, int roleBase, int roleWorldSize) {

  /** The ranks of agent {@code groupRank} given every agent's role info, in group-rank order. */
  static Ranks assign(List<RoleInfo> infos, int groupRank) {
    RoleInfo mine = infos.get(groupRank);
    int base = 0;
    int world = 0;
    int roleBase = 0;
    int roleWorld = 0;
    for (RoleInfo info : infos) {
      world += info.localWorldSize();
      if (info.rank() < groupRank) {
        base += info.localWorldSize();
      }
      if (info.role().equals(mine.role())) {
        roleWorld += info.localWorldSize();
        if (info.rank() < groupRank) {
          roleBase += info.localWorldSize();
        }
      }
    }
    return new Ranks(base, world, roleBase, roleWorld);
  }

  /**
   * The ranks of every agent when each has the same role and {@code localWorldSize} workers:
   * PyTorch 2.x's {@code TORCH_ELASTIC_WORKER_IDENTICAL} fast path, with no store traffic.
   */
  static Ranks identical(int groupRank, int groupWorldSize, int localWorldSize) {
    int base = groupRank * localWorldSize;
    int world = groupWorldSize * localWorldSize;
    return new Ranks(base, world, base, world);
  }

  /** The global ranks of the {@code n} local workers. */
  List<Integer> globalRanks(int n) {
    List<Integer> ranks = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      ranks.add(base + i);
    }
    return ranks;
  }

  /**
   * PyTorch 2.x's {@code torchelastic/assigned_ranks/<r>} value: the JSON array {@code [base,
   * world, role base, role world]}.
   */
  byte[] encode() {
    return Json.write(List.of((long) base, (long) worldSize, (long) roleBase, (long) roleWorldSize))
        .getBytes(StandardCharsets.UTF_8);
  }

  /**
   * @throws RendezvousStateException when the bytes are not four numbers
   */
  static Ranks decode(byte[] data, int groupRank) {
    String text = new String(data, StandardCharsets.UTF_8);
    try {
      if (Json.parse(text) instanceof List<?> list
          && list.size() == 4
          && list.stream().allMatch(Long.class::isInstance)) {
        return new Ranks(
            ((Long) list.get(0)).intValue(),
            ((Long) list.get(1)).intValue(),
            ((Long) list.get(2)).intValue(),
            ((Long) list.get(3)).intValue());
      }
    } catch (IllegalArgumentException e) {
      // reported below
    }
    throw new RendezvousStateException(
        "the ranks assigned to agent " + groupRank + " are not four numbers: " + text);
  }
}
