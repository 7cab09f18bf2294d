package org.rdzv.dynamic;

import java.time.Duration;
import java.time.Instant;

/** A clock that moves only when told to (or when something sleeps on it). */
final class FakeClock implements Clock {
  private Instant wall = Instant.parse("2026-01-02T03:04:05.000006Z");
  private long nanos = 1_000_000_000_000L;
  long slept;

  @Override
  public synchronized Instant wallNow() {
    return wall;
  }

  @Override
  public synchronized long nanoTime() {
    return nanos;
  }

  @Override
  public void sleep(Duration duration) {
    advance(duration);
    synchronized (this) {
      slept += duration.toNanos();
    }
  }

  synchronized void advance(Duration d) {
    wall = wall.plus(d);
    nanos += d.toNanos();
  }
}
