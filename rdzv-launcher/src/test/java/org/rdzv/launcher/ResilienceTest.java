package org.rdzv.launcher;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.testing.Await;
import org.rdzv.testing.ChildProcess;
import org.rdzv.testing.Torch;

/** Launchers in their own JVMs, killed and signalled, against a rendezvous store the test hosts. */
@Timeout(180)
class ResilienceTest {
  private static final String FAST_CONF =
      "is_host=false,last_call_timeout=1,keep_alive_interval=1,keep_alive_max_attempt=5,join_timeout=60";

  private final TcpStoreServer rdzvStore = TcpStoreServer.start("127.0.0.1", 0);
  private final String endpoint = "127.0.0.1:" + rdzvStore.port();
  private final List<ChildProcess> children = new ArrayList<>();

  @AfterEach
  void close() {
    children.forEach(ChildProcess::close);
    rdzvStore.close();
  }

  @TempDir Path dir;

  private ChildProcess agent(
      String runId, String nnodes, int nproc, int maxRestarts, List<String> command) {
    List<String> args =
        new ArrayList<>(
            List.of(endpoint, runId, nnodes, "" + nproc, "" + maxRestarts, FAST_CONF, "--"));
    args.addAll(command);
    ChildProcess child = startAgent(args, Map.of("ELASTIC_DONE", dir.resolve("done").toString()));
    children.add(child);
    return child;
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void whenALauncherIsKilledTheSurvivorReRendezvousesAndFinishes(Torch torch) throws Exception {
    torch.require();
    List<String> command = new ArrayList<>(torch.python());
    command.add("-u");
    command.add(GlooWorkersTest.script("elastic.py").toString());
    Survivor survivor = killOneOfTwo(command, "up rank 0 world 1", "world 2");

    RunResult result = survivor.run.get(120, TimeUnit.SECONDS);
    String out = survivor.output();
    assertThat(result.state()).as(out).isEqualTo(WorkerState.SUCCEEDED);
    assertThat(out).contains("[rank0]:done rank 0 world 1 sum 1");
    assertThat(survivor.rounds().get(0).groupWorldSize()).isEqualTo(2);
    assertThat(survivor.rounds().getLast().groupWorldSize()).isEqualTo(1);
  }

  /**
   * Workers that never talk to each other do not notice a lost node, so PyTorch's agent would run
   * on (issue #111646); ours learns it from the rendezvous heartbeats and re-rendezvouses.
   */
  @Test
  void aLostNodeMakesTheSurvivorReRendezvousEvenIfItsWorkersDoNotNotice() throws Exception {
    String script =
        "echo \"up world $WORLD_SIZE\"; if [ \"$WORLD_SIZE\" = 1 ] && [ -f \"$ELASTIC_DONE\" ]; then exit 0; fi; exec sleep 300";
    Survivor survivor = killOneOfTwo(List.of("sh", "-c", script), "up world 1", "up world 2");

    RunResult result = survivor.run.get(60, TimeUnit.SECONDS);
    assertThat(result.state()).as(survivor.output()).isEqualTo(WorkerState.SUCCEEDED);
    assertThat(result.restarts()).isZero(); // a membership change, not a failure
    assertThat(survivor.rounds().getLast().groupWorldSize()).isEqualTo(1);
  }

  record Survivor(
      CompletableFuture<RunResult> run, List<AgentEvent> events, ByteArrayOutputStream console) {
    String output() {
      return console.toString(StandardCharsets.UTF_8);
    }

    List<AgentEvent.RendezvousCompleted> rounds() {
      List<AgentEvent.RendezvousCompleted> rounds = new ArrayList<>();
      events.forEach(
          e -> {
            if (e instanceof AgentEvent.RendezvousCompleted r) {
              rounds.add(r);
            }
          });
      return rounds;
    }
  }

  /**
   * Starts a victim launcher (own JVM) alone, then a survivor launcher (in-process) that joins it
   * in a round of two; then kills the victim's whole process tree, as a lost node.
   */
  private Survivor killOneOfTwo(List<String> command, String victimAlone, String together)
      throws Exception {
    String runId = "kill-" + UUID.randomUUID();
    ChildProcess victim = agent(runId, "1:2", 1, 0, command);
    victim.awaitLine(l -> l.contains(victimAlone), Duration.ofSeconds(60));

    List<AgentEvent> events = new CopyOnWriteArrayList<>();
    ByteArrayOutputStream console = new ByteArrayOutputStream();
    RendezvousParameters p =
        Launcher.withDefaults(
            new RendezvousParameters(
                "c10d",
                endpoint,
                runId,
                1,
                2,
                null,
                Map.copyOf(org.rdzv.api.RendezvousConfig.parse(FAST_CONF))));
    LaunchConfig config =
        LaunchConfig.builder(p, command)
            .maxRestarts(1)
            .tee(Std.ALL)
            .stopTimeout(Duration.ofSeconds(5))
            .putEnvironment("ELASTIC_DONE", dir.resolve("done").toString())
            .out(new PrintStream(console, true, StandardCharsets.UTF_8))
            .err(new PrintStream(console, true, StandardCharsets.UTF_8))
            .build();
    CompletableFuture<RunResult> run =
        GlooWorkersTest.async(() -> Launcher.launch(config, events::add));

    // The newcomer waits; the running agent sees it and both restart into a round of two.
    victim.awaitLine(l -> l.contains(together), Duration.ofSeconds(60));
    Await.until(
        "the survivor's worker is in the two-node group",
        Duration.ofSeconds(60),
        () -> console.toString(StandardCharsets.UTF_8).contains(together));

    Files.createFile(dir.resolve("done"));
    victim.killTree();
    return new Survivor(run, events, console);
  }

  @Test
  void sigtermStopsTheWorkersAndWhatTheyStartedThenTheLauncherExits() {
    assertSignalLeavesNothingBehind("TERM", 143);
  }

  @Test
  void sigintStopsTheWorkersAndWhatTheyStartedThenTheLauncherExits() {
    assertSignalLeavesNothingBehind("INT", 130);
  }

  /** {@code java -cp <this test class path> AgentMain args...}: a launcher in a JVM of its own. */
  private static ChildProcess startAgent(List<String> args, Map<String, String> env) {
    List<String> command = new ArrayList<>();
    command.add(ProcessHandle.current().info().command().orElse("java"));
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(AgentMain.class.getName());
    command.addAll(args);
    return ChildProcess.start(command, env);
  }

  private static final Pattern PIDS = Pattern.compile("pids=\\{0=(\\d+), 1=(\\d+)}");
  private static final Pattern CHILD = Pattern.compile("child (\\d+)");

  private void assertSignalLeavesNothingBehind(String signal, int expectedStatus) {
    ChildProcess launcher =
        agent(
            "sig-" + UUID.randomUUID(),
            "1",
            2,
            0,
            List.of("sh", "-c", "sleep 300 & echo \"child $!\"; wait"));
    String started =
        launcher.awaitLine(l -> l.startsWith("event WorkersStarted"), Duration.ofSeconds(60));
    Matcher m = PIDS.matcher(started);
    assertThat(m.find()).as(started).isTrue();
    List<Long> pids =
        new ArrayList<>(List.of(Long.parseLong(m.group(1)), Long.parseLong(m.group(2))));
    Await.until(
        "both workers started their child",
        Duration.ofSeconds(30),
        () -> launcher.lines().stream().filter(l -> CHILD.matcher(l).find()).count() == 2);
    for (String line : launcher.lines()) {
      Matcher c = CHILD.matcher(line);
      if (c.find()) {
        pids.add(Long.parseLong(c.group(1)));
      }
    }
    assertThat(pids).hasSize(4).allMatch(LocalElasticAgentTest::alive);

    kill(signal, launcher.process().pid());

    assertThat(launcher.awaitExit(Duration.ofSeconds(30)))
        .as(launcher.output())
        .isEqualTo(expectedStatus);
    assertThat(pids).noneMatch(LocalElasticAgentTest::alive);
  }

  private static void kill(String signal, long pid) {
    try {
      Process kill =
          new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).inheritIO().start();
      assertThat(kill.waitFor(10, TimeUnit.SECONDS)).isTrue();
      assertThat(kill.exitValue()).isZero();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError(e);
    }
  }
}
