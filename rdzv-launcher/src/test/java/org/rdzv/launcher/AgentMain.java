package org.rdzv.launcher;

import java.time.Duration;
import java.time.ZoneId;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.rdzv.api.RendezvousConfig;
import org.rdzv.api.RendezvousParameters;

/**
 * A launcher in its own JVM for tests that kill or signal it: {@code AgentMain ENDPOINT RUN_ID
 * MIN:MAX NPROC MAX_RESTARTS CONF -- COMMAND...}. Prints one line per agent event ({@code event
 * ...}), tees worker output with rank prefixes, prints the failure summary, and exits like {@code
 * rdzv run} (0, 1, or the signal's status).
 */
public final class AgentMain {
  private AgentMain() {}

  public static void main(String[] args) {
    int dash = Arrays.asList(args).indexOf("--");
    String[] nn = args[2].split(":");
    RendezvousParameters parameters =
        new RendezvousParameters(
            "c10d",
            args[0],
            args[1],
            Integer.parseInt(nn[0]),
            Integer.parseInt(nn[nn.length - 1]),
            null,
            new java.util.LinkedHashMap<>(RendezvousConfig.parse(args[5])));
    List<String> command = new ArrayList<>(Arrays.asList(args).subList(dash + 1, args.length));
    LaunchConfig config =
        LaunchConfig.builder(parameters, command)
            .nprocPerNode(Integer.parseInt(args[3]))
            .maxRestarts(Integer.parseInt(args[4]))
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
