package org.rdzv.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.testing.Await;
import org.rdzv.testing.FreePort;

/**
 * {@code rdzv status} of rounds as they form: the node range the nodes announced, the deadlines,
 * {@code -} for ranks not assigned yet, JSON with the same, and {@code --watch}.
 */
class StatusCommandTest {
  private final TcpStoreServer server = TcpStoreServer.start("127.0.0.1", 0);
  private final List<RendezvousHandler> handlers = new ArrayList<>();
  private final ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
  private final String runId = "st-" + UUID.randomUUID();

  @AfterEach
  void stop() {
    handlers.forEach(RendezvousHandler::close);
    pool.shutdownNow();
    server.close();
  }

  private String endpoint() {
    return "127.0.0.1:" + server.port();
  }

  private CompletableFuture<RendezvousInfo> join(int min, int max) {
    RendezvousHandler h =
        RendezvousRegistry.handler(
            new RendezvousParameters(
                "c10d",
                endpoint(),
                runId,
                min,
                max,
                null,
                Map.of("is_host", "false", "join_timeout", "120", "last_call_timeout", "60")));
    handlers.add(h);
    return CompletableFuture.supplyAsync(h::nextRendezvous, pool);
  }

  private CliTest.Result status(String... more) {
    List<String> args =
        new ArrayList<>(List.of("status", "--rdzv-endpoint", endpoint(), "--rdzv-id", runId));
    args.addAll(List.of(more));
    return CliTest.rdzv(args.toArray(String[]::new));
  }

  private String awaitStatus(String text) {
    return Await.value(
        "status showing " + text,
        Duration.ofSeconds(60),
        () -> {
          String out = status().out();
          return out.contains(text) ? out : null;
        });
  }

  @Test
  void aFormingRoundShowsTheRangeTheDeadlinesAndNoRanksYet() {
    join(2, 3);
    String out = awaitStatus("participants=1");
    String head = out.lines().findFirst().orElseThrow();
    assertThat(head)
        .contains("round=0 complete=false closed=false")
        .contains(" min=2 max=3 deadline=none last_call_in=- needed=1 join_deadline=")
        .containsPattern("join_deadline_in=1[01][0-9]\\.\\ds");
    assertThat(out)
        .containsPattern("participant rank=- node=\\S+ heartbeat_age=\\S+ join_deadline_in=");
    String json = status("--json").out();
    assertThat(json)
        .startsWith("{\"run_id\": \"" + runId + "\", \"round\": 0, \"complete\": false")
        .contains(
            "\"deadline\": null, \"last_call_in_seconds\": null, \"min_nodes\": 2, \"max_nodes\": 3")
        .contains("\"rank\": 0, \"assigned\": false");

    // The minimum is there: the last call counts down.
    join(2, 3);
    String lastCall = awaitStatus("participants=2");
    assertThat(lastCall.lines().findFirst().orElseThrow())
        .containsPattern(" deadline=\\S+Z last_call_in=[1-6]?[0-9]\\.\\ds join_deadline=")
        .doesNotContain("needed=");
  }

  @Test
  void aCompleteRoundShowsRanksAndNoJoinDeadline() throws Exception {
    var a = join(2, 2);
    var b = join(2, 2);
    a.get(60, TimeUnit.SECONDS);
    b.get(60, TimeUnit.SECONDS);
    String out = status().out();
    assertThat(out.lines().findFirst().orElseThrow())
        .contains("complete=true")
        .contains("min=2 max=2 deadline=none last_call_in=- join_deadline=none join_deadline_in=-");
    assertThat(out).contains("participant rank=0 node=").contains("participant rank=1 node=");
    assertThat(status("--json").out()).contains("\"assigned\": true");
  }

  @Test
  void watchPrintsPlainFramesUntilInterrupted() throws Exception {
    join(2, 3);
    awaitStatus("participants=1");
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    CompletableFuture<Integer> exit = new CompletableFuture<>();
    Thread watcher =
        Thread.ofPlatform()
            .start(
                () ->
                    exit.complete(
                        Cli.run(
                            new PrintStream(out, true, StandardCharsets.UTF_8),
                            new PrintStream(new ByteArrayOutputStream(), true),
                            "status",
                            "--rdzv-endpoint",
                            endpoint(),
                            "--rdzv-id",
                            runId,
                            "--watch",
                            "0.2")));
    Await.until(
        "three frames",
        Duration.ofSeconds(30),
        () -> out.toString(StandardCharsets.UTF_8).split("\n\n").length >= 3);
    watcher.interrupt();
    assertThat(exit.get(30, TimeUnit.SECONDS)).isEqualTo(ExitCode.INTERRUPTED.code());
    String text = out.toString(StandardCharsets.UTF_8);
    assertThat(text).doesNotContain("\u001b");
    for (String frame : text.split("\n\n")) {
      if (!frame.isBlank()) {
        assertThat(frame).startsWith("run_id=" + runId + " round=0");
      }
    }
  }

  @Test
  void watchKeepsLookingWhenTheBackendIsUnreachable() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    CompletableFuture<Integer> exit = new CompletableFuture<>();
    String closed = "127.0.0.1:" + FreePort.next();
    Thread watcher =
        Thread.ofPlatform()
            .start(
                () ->
                    exit.complete(
                        Cli.run(
                            new PrintStream(out, true, StandardCharsets.UTF_8),
                            new PrintStream(new ByteArrayOutputStream(), true),
                            "status",
                            "--rdzv-endpoint",
                            closed,
                            "--rdzv-id",
                            runId,
                            "--watch",
                            "0.1")));
    Await.until(
        "two error frames",
        Duration.ofSeconds(30),
        () -> out.toString(StandardCharsets.UTF_8).split("rdzv status: ").length >= 3);
    watcher.interrupt();
    assertThat(exit.get(30, TimeUnit.SECONDS)).isEqualTo(ExitCode.INTERRUPTED.code());
    assertThat(out.toString(StandardCharsets.UTF_8)).contains(closed).contains("refused");
  }

  @Test
  void onATerminalAFrameRedrawsInPlace() {
    String frame =
        StatusCommand.frame(
            List.of("run_id=a round=0", "  participant"), true, Duration.ofSeconds(2));
    assertThat(frame)
        .isEqualTo(
            "\u001b[Hrun_id=a round=0\u001b[K\n  participant\u001b[K\n(every 2 s; Ctrl-C to"
                + " stop)\u001b[K\n\u001b[J");
    assertThat(StatusCommand.frame(List.of("run_id=a", "  x"), false, Duration.ofSeconds(2)))
        .isEqualTo("run_id=a\n  x\n\n");
  }
}
