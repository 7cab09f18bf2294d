package org.rdzv.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.api.internal.Json;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code rdzv join}: joins one rendezvous round as one node and prints one line with {@code rank=R
 * world_size=W round=N}. Then it leaves the rendezvous without closing it for the others (it
 * removes itself from the round), or with {@code --hold} stays in it, heartbeating, until
 * SIGINT/SIGTERM and leaves then.
 */
@Command(
    name = "join",
    mixinStandardHelpOptions = true,
    description = {
      "Join one rendezvous round and print this node's rank.",
      "Prints 'rank=R world_size=W round=N node=... run_id=...' (or JSON with --json), then leaves",
      "the round without closing the rendezvous for the others. --hold stays in it, heartbeating,",
      "until SIGINT/SIGTERM. A node that hosts the c10d store (is_host) stops it when it exits."
    })
public final class JoinCommand implements Callable<Integer> {

  @Spec CommandSpec spec;

  @Mixin RendezvousOptions rendezvous;

  @Mixin EventLogOption eventLog;

  @Option(names = "--json", description = "Print the result as one JSON object.")
  boolean json;

  @Option(
      names = "--hold",
      description = "Stay in the rendezvous, heartbeating, until SIGINT/SIGTERM; then leave.")
  boolean hold;

  @Override
  public Integer call() throws InterruptedException {
    Quiet.unlessVerbose(spec);
    RendezvousParameters params = rendezvous.toParameters("c10d", "none");
    Logging.context("command", "join");
    Logging.context("run_id", params.runId());
    try (Opened events = eventLog.open()) {
      return join(params);
    }
  }

  private int join(RendezvousParameters params) throws InterruptedException {
    RendezvousHandler handler = RendezvousRegistry.handler(params);
    PrintWriter out = spec.commandLine().getOut();
    RendezvousInfo info;
    try {
      info = handler.nextRendezvous();
    } catch (RuntimeException e) {
      handler.close();
      throw e;
    }
    String node = handler.nodeName();
    if (json) {
      out.println(
          "{\"rank\": "
              + info.rank()
              + ", \"world_size\": "
              + info.worldSize()
              + ", \"round\": "
              + info.round()
              + ", \"node\": "
              + Json.quote(node)
              + ", \"run_id\": "
              + Json.quote(params.runId())
              + ", \"backend\": "
              + Json.quote(params.backend())
              + "}");
    } else {
      out.println(
          "rank="
              + info.rank()
              + " world_size="
              + info.worldSize()
              + " round="
              + info.round()
              + (node.isEmpty() ? "" : " node=" + node)
              + " run_id="
              + params.runId());
    }
    out.flush();
    if (!hold) {
      leaveAndClose(handler);
      return ExitCode.OK.code();
    }
    // Stay until SIGINT/SIGTERM: the shutdown hook releases this thread and waits for it to
    // leave, so the others see this node go at once instead of after the heartbeat expiry.
    CountDownLatch signalled = new CountDownLatch(1);
    CountDownLatch left = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  signalled.countDown();
                  try {
                    left.await(35, java.util.concurrent.TimeUnit.SECONDS);
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                },
                "rdzv-join-leave"));
    signalled.await();
    try {
      leaveAndClose(handler);
    } finally {
      left.countDown();
    }
    return ExitCode.OK.code();
  }

  /** Leaves without closing the rendezvous for the others, then releases the handler. */
  private static void leaveAndClose(RendezvousHandler handler) {
    try {
      handler.leave();
    } finally {
      handler.close();
    }
  }
}
