package org.rdzv.etcd;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;

/** Java nodes joining one rendezvous concurrently, each on its own thread, as the tests need. */
final class JavaNodes implements AutoCloseable {
  /** What one node saw: its rendezvous and, with an exchange, every rank's greeting. */
  record Outcome(RendezvousInfo info, List<String> greetings) {}

  final List<RendezvousHandler> handlers = new ArrayList<>();
  final List<CompletableFuture<Outcome>> outcomes = new ArrayList<>();

  static RendezvousParameters params(
      String backend, String endpoint, String runId, int min, int max, Map<String, ?> config) {
    return new RendezvousParameters(backend, endpoint, runId, min, max, config);
  }

  /** Creates {@code count} handlers through the registry and starts their joins. */
  static JavaNodes start(RendezvousParameters params, int count, boolean exchange) {
    JavaNodes nodes = new JavaNodes();
    for (int i = 0; i < count; i++) {
      nodes.handlers.add(RendezvousRegistry.handler(params));
    }
    for (RendezvousHandler handler : nodes.handlers) {
      CompletableFuture<Outcome> future = new CompletableFuture<>();
      Thread.ofVirtual()
          .start(
              () -> {
                try {
                  RendezvousInfo info = handler.nextRendezvous();
                  List<String> greetings = List.of();
                  if (exchange) {
                    info.store().set("from_" + info.rank(), "hello" + info.rank());
                    List<String> got = new ArrayList<>();
                    for (int r = 0; r < info.worldSize(); r++) {
                      got.add(new String(info.store().get("from_" + r), StandardCharsets.UTF_8));
                    }
                    greetings = got;
                  }
                  future.complete(new Outcome(info, greetings));
                } catch (Throwable t) {
                  future.completeExceptionally(t);
                }
              });
      nodes.outcomes.add(future);
    }
    return nodes;
  }

  List<Outcome> await(Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    List<Outcome> result = new ArrayList<>();
    for (CompletableFuture<Outcome> future : outcomes) {
      try {
        result.add(future.get(Math.max(deadline - System.nanoTime(), 1), TimeUnit.NANOSECONDS));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError("interrupted", e);
      } catch (ExecutionException e) {
        throw new AssertionError("a Java node failed: " + e.getCause(), e.getCause());
      } catch (TimeoutException e) {
        throw new AssertionError("Java nodes not done within " + timeout, e);
      }
    }
    return result;
  }

  @Override
  public void close() {
    outcomes.forEach(f -> f.cancel(true));
    for (RendezvousHandler h : handlers) {
      if (h instanceof AutoCloseable c) {
        try {
          c.close(); // a dynamic handler's bootstrap store, for one
        } catch (Exception e) {
          throw new AssertionError("closing " + h, e);
        }
      }
    }
  }
}
