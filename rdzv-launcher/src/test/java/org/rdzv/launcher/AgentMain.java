package org.rdzv.launcher;

import java.time.Duration;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import org.rdzv.api.RendezvousConfig;
import org.rdzv.api.RendezvousParameters;

/**
 * A launcher in its own JVM for tests that kill or signal it, or need it to be a process of its own
 * (its pid orders it among PyTorch nodes): {@code AgentMain [backend=NAME] ENDPOINT RUN_ID MIN:MAX
 * NPROC MAX_RESTARTS CONF -- COMMAND...} (backend {@code c10d} unless given; {@code static} reads
 * its rank from {@code CONF}). Prints one line per agent event ({@code event ...}), tees worker
 * output with rank prefixes, prints the failure summary, and exits like {@code rdzv run} (0, 1, or
 * the signal's status).
 */
public final class AgentMain {
  private AgentMain() {}

  public static void main(String[] argv) {
    List<String> args = new ArrayList<>(Arrays.asList(argv));
    String backend = "c10d";
    if (args.get(0).startsWith("backend=")) {
      backend = args.remove(0).substring("backend=".length());
    }
    int dash = args.indexOf("--");
    String[] nn = args.get(2).split(":");
    RendezvousParameters parameters =
        new RendezvousParameters(
            backend,
            args.get(0),
            args.get(1),
            Integer.parseInt(nn[0]),
            Integer.parseInt(nn[nn.length - 1]),
            null,
            new LinkedHashMap<>(RendezvousConfig.parse(args.get(5))));
    List<String> command = new ArrayList<>(args.subList(dash + 1, args.size()));
    LaunchConfig config =
        LaunchConfig.builder(parameters, command)
            .nprocPerNode(Integer.parseInt(args.get(3)))
            .maxRestarts(Integer.parseInt(args.get(4)))
            .stopTimeout(Duration.ofSeconds(5))
            .tee(Std.ALL)
            .build();
    RunResult result =
        Launcher.launch(
            config,
            event -> {
              System.out.println("event " + event);
              System.out.flush();
            });
    if (!result.isSuccess() && !result.failures().isEmpty()) {
      System.err.println(
          FailureSummary.format(
              command.get(0), result.failures(), "localhost", ZoneId.systemDefault()));
    }
    System.out.println("result " + result.state());
    System.exit(result.isSuccess() ? 0 : 1);
  }
}
