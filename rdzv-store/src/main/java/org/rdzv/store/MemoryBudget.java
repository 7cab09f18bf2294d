package org.rdzv.store;

/**
 * The server's memory budget, in two halves. The data half holds stored keys, values and queues; a
 * write that does not fit is refused. The connections half holds, for every connection, an
 * allowance taken when it is accepted and whatever it holds beyond it: half-received frames,
 * replies queued and not yet written, parked wait and watch registrations; a connection that needs
 * more than is left waits (is not read from) until memory is given back, and a connection is not
 * accepted when no allowance is left. Small requests and replies fit in the allowance, so they
 * never wait for memory that other connections hold.
 *
 * <p>Counts bytes as the server charges them (with fixed per-entry overheads), not what the heap
 * measures. Used only on the event-loop thread; the gauges read {@code volatile} copies.
 */
final class MemoryBudget implements StoreState.Budget {
  /** What every connection is charged when accepted, and may hold without asking for more. */
  static final long ALLOWANCE = 8 * 1024;

  private final long limit;
  private final long dataShare;
  private final long connectionShare;

  private long data;
  private long connections;

  /** Raw bytes by kind, for the gauges. */
  private long frames;

  private long replies;
  private long waits;

  /** Whether connection memory was given back since {@link #takeFreed()} last looked. */
  private boolean freed;

  MemoryBudget(long limit) {
    this.limit = limit;
    this.dataShare = limit / 2;
    this.connectionShare = limit - dataShare;
  }

  long limit() {
    return limit;
  }

  /** Everything counted against the budget. */
  long used() {
    return data + connections;
  }

  long data() {
    return data;
  }

  long frames() {
    return frames;
  }

  long replies() {
    return replies;
  }

  long waits() {
    return waits;
  }

  @Override
  public boolean tryCharge(long bytes) {
    if (data + bytes > dataShare) {
      return false;
    }
    data += bytes;
    return true;
  }

  @Override
  public void release(long bytes) {
    data -= bytes;
  }

  @Override
  public String exhausted(long bytes) {
    return "memory budget exhausted: the store holds "
        + data
        + " bytes of data and "
        + bytes
        + " more would pass its half of the budget of "
        + limit
        + " bytes (rdzv store --memory-budget)";
  }

  /** Takes a new connection's allowance; false if none is left. */
  boolean admit() {
    if (connections + ALLOWANCE > connectionShare) {
      return false;
    }
    connections += ALLOWANCE;
    return true;
  }

  long connectionShare() {
    return connectionShare;
  }

  /** What is left of the connections' half. */
  long connectionRoom() {
    return connectionShare - connections;
  }

  /** A connection now counts {@code delta} bytes more (negative: less). */
  void adjust(long delta) {
    connections += delta;
    if (delta < 0) {
      freed = true;
    }
  }

  /** Raw bytes held by kind changed (for the gauges). */
  void held(long frameDelta, long replyDelta, long waitDelta) {
    frames += frameDelta;
    replies += replyDelta;
    waits += waitDelta;
  }

  /** Whether connection memory was given back since the last call; clears the flag. */
  boolean takeFreed() {
    boolean f = freed;
    freed = false;
    return f;
  }
}
