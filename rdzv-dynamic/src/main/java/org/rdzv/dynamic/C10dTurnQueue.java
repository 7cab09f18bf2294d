package org.rdzv.dynamic;

import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import org.rdzv.api.Store;
import org.rdzv.api.StoreException;
import org.rdzv.api.StoreTimeoutException;
import org.rdzv.dynamic.RendezvousBackend.Turn;

/**
 * rdzv's turn queue among Java writers of a c10d rendezvous (not in PyTorch, invisible to it),
 * beside {@link C10dBackend}'s PyTorch state: {@link RendezvousBackend#awaitTurn}.
 *
 * <p>A writer takes a ticket from the counter {@code rdzv/v1/<E(run_id)>/turns} (a joiner also
 * registers its descriptor under {@code queue/<ticket>}), waits for {@code turn/<ticket>} to be set
 * by the writer before it, and passes the turn on when done; {@code passed} counts turns passed, so
 * a queue that stops moving for a whole timeout lets the next writer go ahead. Keys older than
 * {@link C10dChangeSignal#NOTIFY_WINDOW} tickets are deleted.
 */
final class C10dTurnQueue {
  private static final System.Logger LOG = System.getLogger(C10dTurnQueue.class.getName());

  /** Joiners a turn holder may add with its own write, at most. */
  private static final int MAX_BATCH = 256;

  private final Store store;
  private final String runId;
  private final RendezvousKeys keys;
  private final Supplier<Store> waiter;

  /**
   * @param keys the run's keys ({@link RendezvousKeys.Own#TURNS}, {@code QUEUE}, {@code TURN},
   *     {@code PASSED})
   * @param waiter the connection to block on while waiting for a turn
   */
  C10dTurnQueue(Store store, RendezvousKeys keys, Supplier<Store> waiter) {
    this.store = store;
    this.runId = keys.runId();
    this.keys = keys;
    this.waiter = waiter;
  }

  /** See {@link RendezvousBackend#awaitTurn}; {@link Turn#NONE} if the store fails. */
  Turn awaitTurn(Duration timeout, NodeDescriptor joining) throws InterruptedException {
    long ticket;
    try {
      ticket = store.add(keys.own(RendezvousKeys.Own.TURNS), 1);
      if (joining != null) {
        store.set(queueKey(ticket), joining.toString().getBytes(StandardCharsets.UTF_8));
      }
    } catch (StoreException e) {
      return Turn.NONE;
    }
    if (ticket > 1) {
      Store waitOn = waiter.get();
      long passedBefore = -1;
      while (true) {
        try {
          waitOn.await(List.of(turnKey(ticket)), timeout);
          break;
        } catch (StoreTimeoutException e) {
          // A long queue is fine while it moves; if no turn was passed on for a whole timeout,
          // the writer before us died or lingers: go ahead, the token still fences our write.
          long passed = store.add(keys.own(RendezvousKeys.Own.PASSED), 0);
          if (passed == passedBefore) {
            break;
          }
          passedBefore = passed;
        } catch (StoreException e) {
          if (Thread.currentThread().isInterrupted()) {
            throw new InterruptedException();
          }
          break;
        }
      }
    }
    return new TicketTurn(ticket);
  }

  private String queueKey(long ticket) {
    return keys.own(RendezvousKeys.Own.QUEUE, ticket);
  }

  private String turnKey(long ticket) {
    return keys.own(RendezvousKeys.Own.TURN, ticket);
  }

  private final class TicketTurn implements Turn {
    private final long ticket;
    private List<NodeDescriptor> joiners;
    private int admitted;
    private boolean passed;

    TicketTurn(long ticket) {
      this.ticket = ticket;
    }

    @Override
    public List<NodeDescriptor> waitingJoiners() {
      if (joiners != null) {
        return joiners;
      }
      joiners = new ArrayList<>();
      try {
        long last = Math.min(store.add(keys.own(RendezvousKeys.Own.TURNS), 0), ticket + MAX_BATCH);
        // The contiguous run of queued joiners right behind us (a ticket without a queue entry
        // wants something else, or has not registered yet: stop there).
        List<String> keys = new ArrayList<>();
        for (long t = ticket + 1; t <= last; t++) {
          if (!store.check(List.of(queueKey(t)))) {
            break;
          }
          keys.add(queueKey(t));
        }
        if (!keys.isEmpty()) {
          for (byte[] value : store.multiGet(keys)) {
            var n = NodeDescriptor.parse(new String(value, StandardCharsets.UTF_8));
            if (n.isEmpty()) {
              break;
            }
            joiners.add(n.get());
          }
        }
      } catch (StoreException e) {
        LOG.log(Level.DEBUG, "rendezvous ''{0}'': cannot read the join queue: {1}", runId, e);
      }
      return joiners;
    }

    @Override
    public void admitted(int count) {
      admitted = Math.max(0, Math.min(count, joiners == null ? 0 : joiners.size()));
    }

    @Override
    public void close() {
      if (passed) {
        return;
      }
      passed = true;
      try {
        // Joiners this write admitted need no turn of their own: wake them all (they re-read and
        // find themselves in), and pass the turn to the first ticket after them.
        for (long t = ticket + 1; t <= ticket + admitted + 1; t++) {
          store.set(turnKey(t), new byte[] {'1'});
        }
        store.add(keys.own(RendezvousKeys.Own.PASSED), 1 + admitted);
        if (ticket > C10dChangeSignal.NOTIFY_WINDOW) {
          store.deleteKey(turnKey(ticket - C10dChangeSignal.NOTIFY_WINDOW));
          store.deleteKey(queueKey(ticket - C10dChangeSignal.NOTIFY_WINDOW));
        }
      } catch (StoreException e) {
        LOG.log(Level.DEBUG, "rendezvous ''{0}'': cannot pass the turn on: {1}", runId, e);
      }
    }
  }
}
