package org.rdzv.api;

import java.util.Objects;

/**
 * The outcome of {@link RendezvousHandler#nextRendezvous()} (PyTorch 2.x's {@code RendezvousInfo}).
 *
 * @param store the store shared by the nodes of this round, already prefixed for the round
 * @param rank this node's rank, {@code 0 <= rank < worldSize}
 * @param worldSize the number of nodes in the round
 * @param bootstrapStoreInfo where workers find their store ({@code MASTER_ADDR}, {@code
 *     MASTER_PORT}); {@code null} when the backend gives none (PyTorch 1.13)
 * @param round the round number, or -1 where the backend has no rounds
 */
public record RendezvousInfo(
    Store store, int rank, int worldSize, RendezvousStoreInfo bootstrapStoreInfo, long round) {
  public RendezvousInfo {
    Objects.requireNonNull(store, "store");
    if (worldSize < 1 || rank < 0 || rank >= worldSize) {
      throw new IllegalArgumentException(
          "rank " + rank + " is outside a world of size " + worldSize);
    }
  }

  public RendezvousInfo(Store store, int rank, int worldSize, RendezvousStoreInfo bootstrap) {
    this(store, rank, worldSize, bootstrap, -1);
  }
}
