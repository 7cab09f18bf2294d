package org.rdzv.cli;

import java.io.PrintWriter;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.api.RendezvousStatus;
import org.rdzv.api.internal.Json;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code rdzv status}: shows a rendezvous without joining it or writing anything (not even the "no
 * state" sentinel PyTorch's constructor writes), also one that PyTorch nodes created. What is shown
 * is the backend provider's {@link RendezvousStatus}: for a dynamic rendezvous (c10d, etcd-v2,
 * etcd-v3, plug-in backends) round, complete, closed, the node range and deadlines (last call, join
 * timeout), participants with ranks ({@code -} until the round completes) and heartbeat ages, wait
 * and redundancy lists; for the legacy {@code etcd} backend, its JSON state as stored. {@code
 * --watch} looks again every few seconds. An endpoint that refuses is one line at once; one that
 * does not answer, one line after 5 s at most.
 */
@Command(
    name = "status",
    mixinStandardHelpOptions = true,
    description = {
      "Show a rendezvous without joining or changing it.",
      "Reads the state (also one PyTorch nodes created) as a client; writes nothing.",
      "Backends: c10d, etcd-v2, etcd-v3 and plug-ins (decoded), etcd (its JSON as stored)."
    })
public final class StatusCommand implements Callable<Integer> {

  @Spec CommandSpec spec;

  @Mixin RendezvousOptions rendezvous;

  @Option(names = "--json", description = "Print the status as one JSON object.")
  boolean json;

  @Option(
      names = "--watch",
      arity = "0..1",
      fallbackValue = "2",
      paramLabel = "SECONDS",
      description =
          "Show the status again every SECONDS (default 2) until interrupted: redrawn in place on"
              + " a terminal, else printed again (with --json, one object a line).")
  Double watch;

  /** The shortest interval --watch takes: a status read is a few round trips. */
  static final Duration MIN_WATCH = Duration.ofMillis(100);

  @Override
  public Integer call() {
    Quiet.unlessVerbose(spec);
    RendezvousParameters params = rendezvous.toParameters("c10d", "none");
    PrintWriter out = spec.commandLine().getOut();
    if (watch == null) {
      render(params, Instant.now()).forEach(out::println);
      out.flush();
      return ExitCode.OK.code();
    }
    if (watch.isNaN() || watch <= 0) {
      throw new IllegalArgumentException(
          "--watch must be a positive number of seconds, not " + watch + ".");
    }
    Duration every = Duration.ofNanos((long) (watch * 1e9));
    if (every.compareTo(MIN_WATCH) < 0) {
      every = MIN_WATCH;
    }
    boolean terminal =
        spec.root().userObject() instanceof RdzvCommand root && root.outIsTerminal && !json;
    while (true) {
      List<String> frame;
      try {
        frame = render(params, Instant.now());
      } catch (RuntimeException e) {
        // While watching, an unreachable backend is news, not the end: say so and look again.
        frame = List.of("rdzv status: " + Errors.oneLine(e));
      }
      out.print(frame(frame, terminal, every));
      out.flush();
      try {
        Thread.sleep(every);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return ExitCode.INTERRUPTED.code();
      }
    }
  }

  /**
   * One look at the rendezvous as lines. The backend's provider reads and renders its own state, so
   * any backend (plug-ins included) shows; one that keeps no readable state (static) refuses with a
   * usage error.
   */
  private List<String> render(RendezvousParameters params, Instant now) {
    Optional<RendezvousStatus> status = RendezvousRegistry.defaultRegistry().readStatus(params);
    if (status.isEmpty()) {
      return List.of(
          json
              ? "{\"run_id\": " + Json.quote(params.runId()) + ", \"state\": null}"
              : "run_id=" + params.runId() + " state=none");
    }
    return json ? List.of(status.get().toJson(now)) : status.get().lines(now);
  }

  /**
   * What one --watch look prints: on a terminal, the lines drawn over the previous ones from the
   * top left (each line cleared to its end, the rest of the screen below cleared); elsewhere the
   * lines and an empty line, so that a log or a pipe gets plain text.
   */
  static String frame(List<String> lines, boolean terminal, Duration every) {
    StringBuilder b = new StringBuilder();
    if (terminal) {
      b.append("\u001b[H");
      for (String line : lines) {
        b.append(line).append("\u001b[K\n");
      }
      b.append("(every ")
          .append(
              every.toMillis() % 1000 == 0 ? every.toSeconds() + " s" : every.toMillis() + " ms")
          .append("; Ctrl-C to stop)\u001b[K\n\u001b[J");
    } else {
      for (String line : lines) {
        b.append(line).append('\n');
      }
      if (lines.size() > 1 || !lines.get(0).startsWith("{")) {
        b.append('\n');
      }
    }
    return b.toString();
  }
}
