package org.rdzv.dynamic;

import java.time.Duration;
import java.time.Instant;

/**
 * Time as the rendezvous sees it: wall-clock UTC for the shared state (heartbeats, last-call
 * deadlines, as PyTorch writes them), monotonic nanoseconds for this node's own operation
 * deadlines, and sleeping. Injected so the state machine is tested without sleeping.
 */
interface Clock {
  Instant wallNow();

  long nanoTime();

  void sleep(Duration duration) throws InterruptedException;

  Clock SYSTEM =
      new Clock() {
        @Override
        public Instant wallNow() {
          return Instant.now();
        }

        @Override
        public long nanoTime() {
          return System.nanoTime();
        }

        @Override
        public void sleep(Duration duration) throws InterruptedException {
          if (duration.toNanos() > 0) {
            Thread.sleep(duration);
          }
        }
      };
}
