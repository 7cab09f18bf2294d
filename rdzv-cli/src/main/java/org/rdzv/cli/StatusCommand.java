package org.rdzv.cli;

import java.io.PrintWriter;
import java.time.Instant;
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
 * etcd-v3, plug-in backends) round, complete, closed, participants with ranks and heartbeat ages,
 * wait and redundancy lists; for the legacy {@code etcd} backend, its JSON state as stored.
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

  @Override
  public Integer call() {
    Quiet.unlessVerbose(spec);
    RendezvousParameters params = rendezvous.toParameters("c10d", "none");
    PrintWriter out = spec.commandLine().getOut();
    // The backend's provider reads and renders its own state, so any backend (plug-ins included)
    // shows; one that keeps no readable state (static) refuses with a usage error.
    Optional<RendezvousStatus> status = RendezvousRegistry.defaultRegistry().readStatus(params);
    Instant now = Instant.now();
    if (status.isEmpty()) {
      out.println(
          json
              ? "{\"run_id\": " + Json.quote(params.runId()) + ", \"state\": null}"
              : "run_id=" + params.runId() + " state=none");
    } else if (json) {
      out.println(status.get().toJson(now));
    } else {
      status.get().lines(now).forEach(out::println);
    }
    out.flush();
    return ExitCode.OK.code();
  }
}
