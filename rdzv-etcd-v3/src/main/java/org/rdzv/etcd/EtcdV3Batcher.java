package org.rdzv.etcd;

import io.etcd.jetcd.ByteSequence;
import io.etcd.jetcd.KV;
import io.etcd.jetcd.kv.GetResponse;
import io.etcd.jetcd.kv.TxnResponse;
import io.etcd.jetcd.op.Op;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Combines the small operations of many threads of one process into few etcd transactions: what
 * callers submit while earlier transactions are in flight leaves together in the next one, up to
 * {@value #MAX_OPS} operations (etcd's default {@code --max-txn-ops}) and {@value #MAX_BYTES}
 * bytes. One caller alone waits for one round trip, as without it; ten thousand callers in one JVM
 * cost etcd (and the gRPC channel) about a hundredth of the requests, and never more than {@link
 * #maxInFlight} transactions of each kind at once, so etcd is not driven into {@code too many
 * requests}.
 *
 * <p>Reads are gets in a transaction of gets only (etcd serves it as one linearizable read, without
 * a Raft entry); an operation of several gets reads them in one snapshot. Writes are transactions
 * nested in one outer transaction (etcd 3.3+), each applied as if alone, in submission order per
 * key; etcd refuses two writes of one key in one transaction, so a key's writes leave one per
 * transaction, in order. A transaction that fails fails each of its operations (the caller sees the
 * error as if its own request had failed).
 *
 * <p>Callers are linearizable: an operation is sent after it was submitted and completes after etcd
 * answered. Thread-safe; never blocks (completions run on jetcd's threads).
 */
final class EtcdV3Batcher {
  /** etcd's default {@code --max-txn-ops}. */
  static final int MAX_OPS = 128;

  /**
   * Writes per transaction at most: etcd allows a nested transaction only {@code max-txn-ops} minus
   * the outer transaction's operations, and ours have up to 3.
   */
  static final int MAX_WRITES = MAX_OPS - 4;

  /** The payload of one transaction at most (etcd refuses requests above 1.5 MiB by default). */
  static final int MAX_BYTES = 1 << 20;

  private final KV kv;
  private final int maxInFlight;
  private final ReentrantLock lock = new ReentrantLock();

  // Guarded by lock.
  private final ArrayDeque<Read> reads = new ArrayDeque<>();
  private final Map<ByteSequence, ArrayDeque<Write>> writes = new LinkedHashMap<>();
  private int readsInFlight;
  private int writesInFlight;

  EtcdV3Batcher(KV kv, int maxInFlight) {
    this.kv = kv;
    this.maxInFlight = maxInFlight;
  }

  private record Read(List<Op> gets, int bytes, CompletableFuture<List<GetResponse>> result) {}

  private record Write(
      Op.TxnOp txn, List<ByteSequence> keys, int bytes, CompletableFuture<TxnResponse> result) {}

  /**
   * Reads {@code gets} (at most {@value #MAX_OPS}) in one snapshot; the future has one response per
   * get.
   */
  CompletableFuture<List<GetResponse>> read(List<Op> gets, int bytes) {
    if (gets.isEmpty() || gets.size() > MAX_OPS) {
      throw new IllegalArgumentException("a read takes 1 to " + MAX_OPS + " gets");
    }
    Read read = new Read(List.copyOf(gets), bytes, new CompletableFuture<>());
    lock.lock();
    try {
      reads.add(read);
    } finally {
      lock.unlock();
    }
    dispatch();
    return read.result();
  }

  /**
   * Applies {@code txn}, which writes exactly {@code keys} (its puts in both branches), after every
   * earlier write of those keys.
   */
  CompletableFuture<TxnResponse> write(Op.TxnOp txn, List<ByteSequence> keys, int bytes) {
    if (keys.isEmpty()) {
      throw new IllegalArgumentException("a write names the keys it writes");
    }
    Write write = new Write(txn, List.copyOf(keys), bytes, new CompletableFuture<>());
    lock.lock();
    try {
      // Queued under its first key; a write of several keys also waits for the others' turn (see
      // nextWrites), which only the fence does.
      writes.computeIfAbsent(write.keys().get(0), k -> new ArrayDeque<>()).add(write);
    } finally {
      lock.unlock();
    }
    dispatch();
    return write.result();
  }

  /** Sends what is queued while fewer than {@link #maxInFlight} transactions are out. */
  private void dispatch() {
    while (true) {
      List<Read> readBatch = null;
      List<Write> writeBatch = null;
      lock.lock();
      try {
        if (readsInFlight < maxInFlight && !reads.isEmpty()) {
          readBatch = nextReads();
          if (!readBatch.isEmpty()) {
            readsInFlight++;
          }
        }
        if (writesInFlight < maxInFlight && !writes.isEmpty()) {
          writeBatch = nextWrites();
          if (!writeBatch.isEmpty()) {
            writesInFlight++;
          }
        }
      } finally {
        lock.unlock();
      }
      boolean sent = false;
      if (readBatch != null && !readBatch.isEmpty()) {
        sendReads(readBatch);
        sent = true;
      }
      if (writeBatch != null && !writeBatch.isEmpty()) {
        sendWrites(writeBatch);
        sent = true;
      }
      if (!sent) {
        return;
      }
    }
  }

  private List<Read> nextReads() {
    List<Read> batch = new ArrayList<>();
    int ops = 0;
    long bytes = 0;
    while (!reads.isEmpty()) {
      Read next = reads.peek();
      if (next.result().isDone()) { // given up (timed out, interrupted) before it was sent
        reads.poll();
        continue;
      }
      if (!batch.isEmpty()
          && (ops + next.gets().size() > MAX_OPS || bytes + next.bytes() > MAX_BYTES)) {
        break;
      }
      reads.poll();
      batch.add(next);
      ops += next.gets().size();
      bytes += next.bytes();
    }
    return batch;
  }

  /** At most one write per key, the oldest of each, keys in the order they were first queued. */
  private List<Write> nextWrites() {
    List<Write> batch = new ArrayList<>();
    java.util.Set<ByteSequence> taken = new java.util.HashSet<>();
    long bytes = 0;
    Iterator<Map.Entry<ByteSequence, ArrayDeque<Write>>> it = writes.entrySet().iterator();
    while (it.hasNext() && batch.size() < MAX_WRITES) {
      ArrayDeque<Write> queue = it.next().getValue();
      Write next = queue.peek();
      while (next != null && next.result().isDone()) {
        queue.poll();
        next = queue.peek();
      }
      if (next == null) {
        it.remove();
        continue;
      }
      if (!batch.isEmpty() && bytes + next.bytes() > MAX_BYTES) {
        break;
      }
      if (next.keys().stream().anyMatch(taken::contains)) {
        continue;
      }
      queue.poll();
      if (queue.isEmpty()) {
        it.remove();
      }
      batch.add(next);
      taken.addAll(next.keys());
      bytes += next.bytes();
    }
    return batch;
  }

  /** One transaction of {@code ops}; a closed client refuses at once, as a failed future. */
  private CompletableFuture<TxnResponse> commit(Op[] ops) {
    try {
      return kv.txn().Then(ops).commit();
    } catch (RuntimeException e) {
      return CompletableFuture.failedFuture(e);
    }
  }

  /** A transaction of reads (or writes) was answered: one fewer of its kind in flight. */
  private void landed(boolean reads) {
    lock.lock();
    try {
      if (reads) {
        readsInFlight--;
      } else {
        writesInFlight--;
      }
    } finally {
      lock.unlock();
    }
  }

  private void sendReads(List<Read> batch) {
    List<Op> gets = new ArrayList<>();
    batch.forEach(r -> gets.addAll(r.gets()));
    commit(gets.toArray(Op[]::new))
        .whenComplete(
            (response, error) -> {
              landed(true);
              if (error != null) {
                batch.forEach(r -> r.result().completeExceptionally(error));
              } else {
                List<GetResponse> all = response.getGetResponses();
                int i = 0;
                for (Read r : batch) {
                  r.result().complete(all.subList(i, i + r.gets().size()));
                  i += r.gets().size();
                }
              }
              dispatch();
            });
  }

  private void sendWrites(List<Write> batch) {
    Op[] txns = new Op[batch.size()];
    for (int i = 0; i < txns.length; i++) {
      txns[i] = batch.get(i).txn();
    }
    commit(txns)
        .whenComplete(
            (response, error) -> {
              landed(false);
              if (error != null) {
                batch.forEach(w -> w.result().completeExceptionally(error));
              } else {
                List<TxnResponse> each = response.getTxnResponses();
                for (int i = 0; i < batch.size(); i++) {
                  batch.get(i).result().complete(each.get(i));
                }
              }
              dispatch();
            });
  }
}
