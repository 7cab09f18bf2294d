package org.rdzv.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.rdzv.testing.ChildProcess;
import org.rdzv.testing.Torch;

/**
 * {@code rdzv run} as a user runs it, in its own JVM: Prometheus metrics scraped from a live job,
 * the event log of a job whose worker fails and is restarted (read back by PyTorch's own events
 * API), {@code LOGLEVEL} and {@code --log-format json}.
 */
@Timeout(180)
class ObservabilityTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
  private static final Pattern SERVING =
      Pattern.compile("rdzv run: serving Prometheus metrics at http://\\[::\\]:(\\d+)/metrics");

  @TempDir Path dir;

  static ChildProcess rdzv(Map<String, String> env, String... args) {
    List<String> command =
        new ArrayList<>(
            List.of(
                ProcessHandle.current().info().command().orElseThrow(),
                "-cp",
                System.getProperty("java.class.path"),
                Main.class.getName()));
    command.addAll(List.of(args));
    return ChildProcess.start(command, env);
  }

  /**
   * Two workers; in the first attempt local rank 0 exits 3 (the group restarts), in the second both
   * print {@code ready-<local rank>} and wait for the gate file.
   */
  private String[] failOnceThenWait(Path gate, Path events, String... more) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "run",
                "--standalone",
                "--nproc-per-node",
                "2",
                "--max-restarts",
                "1",
                "--metrics-port",
                "0",
                "--event-log",
                events.toString()));
    args.addAll(List.of(more));
    args.addAll(
        List.of(
            "--no-python",
            "sh",
            "-c",
            "if [ \"$TORCHELASTIC_RESTART_COUNT\" = 0 ] && [ \"$LOCAL_RANK\" = 0 ]; then exit 3;"
                + " fi; echo ready-$TORCHELASTIC_RESTART_COUNT-$LOCAL_RANK;"
                + " while [ ! -e '"
                + gate
                + "' ]; do sleep 0.05; done"));
    return args.toArray(String[]::new);
  }

  static HttpResponse<String> get(int port, String path, String method)
      throws IOException, InterruptedException {
    return HTTP.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
            .method(method, HttpRequest.BodyPublishers.noBody())
            .timeout(Duration.ofSeconds(30))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  /** The value of the sample {@code name{labels...}} in Prometheus text, or null. */
  static Double sample(String text, String name, String... labels) {
    for (String line : text.lines().toList()) {
      if (!line.startsWith(name + "{") && !line.startsWith(name + " ")) {
        continue;
      }
      String series = line.substring(0, line.lastIndexOf(' '));
      boolean all = true;
      for (String label : labels) {
        all &= series.contains(label);
      }
      if (all) {
        return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
      }
    }
    return null;
  }

  @Test
  void aLiveRunServesItsMetricsAndItsEventLogTellsTheJobAsPyTorchWould() throws Exception {
    Path gate = dir.resolve("gate");
    Path events = dir.resolve("events.jsonl");
    try (ChildProcess run = rdzv(Map.of(), failOnceThenWait(gate, events))) {
      Matcher serving =
          SERVING.matcher(run.awaitLine(l -> SERVING.matcher(l).find(), Duration.ofSeconds(60)));
      assertThat(serving.find()).isTrue();
      int port = Integer.parseInt(serving.group(1));
      run.awaitLine("ready-1-0"::equals, Duration.ofSeconds(60));
      run.awaitLine("ready-1-1"::equals, Duration.ofSeconds(60));

      // Scraped while the second attempt runs.
      HttpResponse<String> scrape = get(port, "/metrics", "GET");
      assertThat(scrape.statusCode()).isEqualTo(200);
      assertThat(scrape.headers().firstValue("Content-Type").orElse(""))
          .startsWith("text/plain; version=0.0.4");
      String text = scrape.body();
      try {
        assertThat(sample(text, "rdzv_agent_rounds_total", "role=\"default\"")).isEqualTo(2);
        assertThat(sample(text, "rdzv_agent_restarts_total", "reason=\"failure\"")).isEqualTo(1);
        assertThat(sample(text, "rdzv_agent_restarts_total", "reason=\"nodes_waiting\"")).isZero();
        assertThat(sample(text, "rdzv_agent_worker_exits_total", "exit_code=\"3\"")).isEqualTo(1);
        assertThat(sample(text, "rdzv_agent_remaining_restarts")).isZero();
        assertThat(sample(text, "rdzv_agent_workers")).isEqualTo(2);
        assertThat(sample(text, "rdzv_agent_world_size")).isEqualTo(2);
        assertThat(sample(text, "rdzv_agent_rendezvous_seconds_count")).isEqualTo(2);
        assertThat(sample(text, "rdzv_rendezvous_rounds_total", "backend=\"c10d\"")).isEqualTo(2);
        assertThat(sample(text, "rdzv_rendezvous_round")).isEqualTo(1);
        assertThat(sample(text, "rdzv_rendezvous_participants")).isEqualTo(1);
        assertThat(sample(text, "rdzv_rendezvous_waiting_nodes")).isZero();
        assertThat(sample(text, "rdzv_rendezvous_join_seconds_count", "outcome=\"joined\""))
            .isEqualTo(2);
        assertThat(sample(text, "rdzv_rendezvous_join_seconds_bucket", "le=\"+Inf\"")).isEqualTo(2);
        assertThat(sample(text, "jvm_threads_live_threads")).isPositive();
      } catch (AssertionError e) {
        throw new AssertionError(
            e.getMessage() + "\nscraped:\n" + text + "\noutput:\n" + run.output(), e);
      }
      // The endpoint's edges.
      assertThat(get(port, "/metrics", "HEAD").statusCode()).isEqualTo(200);
      assertThat(get(port, "/", "GET").statusCode()).isEqualTo(404);
      assertThat(get(port, "/metrics", "POST").statusCode()).isEqualTo(405);

      // The event log so far: the first round, the failed attempt, the second round.
      List<Map<String, Object>> soFar = read(events);
      assertThat(names(soFar))
          .containsSubsequence(
              "c10d_rendezvous_backend.py:_create_tcp_store",
              "dynamic_rendezvous.py:DynamicRendezvousHandler.next_rendezvous",
              "dynamic_rendezvous.py:_DistributedRendezvousOpExecutor._add_to_participants",
              "dynamic_rendezvous.py:_DistributedRendezvousOpExecutor._mark_rendezvous_complete",
              "dynamic_rendezvous.py:DynamicRendezvousHandler.next_rendezvous",
              "torchelastic.worker.status.RENDEZVOUS",
              "torchelastic.worker.status.ASSIGN_WORKER_RANKS",
              "torchelastic.worker.status.FAILED",
              "torchelastic.worker.status.TERMINATED",
              "dynamic_rendezvous.py:_DistributedRendezvousOpExecutor._remove_from_participants",
              "dynamic_rendezvous.py:DynamicRendezvousHandler.next_rendezvous",
              "torchelastic.worker.status.RENDEZVOUS",
              "torchelastic.worker.status.ASSIGN_WORKER_RANKS");

      Files.createFile(gate);
      assertThat(run.awaitExit(Duration.ofSeconds(60))).as(run.output()).isZero();
      // torchrun's lines for the failure: the closing signal to the survivor, then the failure.
      List<String> lines = run.lines();
      int closing =
          indexOf(
              lines,
              "WARNING:org\\.rdzv\\.launcher\\.LocalWorkers:Sending process \\d+ closing signal"
                  + " SIGTERM");
      int failure =
          indexOf(
              lines,
              "ERROR:org\\.rdzv\\.launcher\\.LocalElasticAgent:failed \\(exitcode: 3\\)"
                  + " local_rank: 0 \\(pid: \\d+\\) of binary: sh");
      assertThat(closing).as(run.output()).isNotNegative();
      assertThat(failure).as(run.output()).isGreaterThan(closing);
    }

    // The whole log: every line is one of PyTorch's events, the job's end included.
    List<Map<String, Object>> all = read(events);
    Map<String, Object> failed = only(all, "torchelastic.worker.status.FAILED");
    assertThat(failed).containsEntry("source", "WORKER");
    assertThat(metadata(failed))
        .containsEntry("global_rank", 0)
        .containsEntry("state", "FAILED")
        .containsEntry("rdzv_backend", "c10d")
        .containsEntry("raw_error", "{\"message\": \"<NONE>\"}")
        .containsEntry("agent_restarts", 0);
    List<Map<String, Object>> rendezvous = all(all, "torchelastic.worker.status.RENDEZVOUS");
    assertThat(rendezvous).hasSize(2);
    assertThat(metadata(rendezvous.get(1))).containsEntry("agent_restarts", 1);
    assertThat(all(all, "torchelastic.worker.status.SUCCEEDED"))
        .extracting(e -> e.get("source") + " " + metadata(e).get("global_rank"))
        .containsExactly("WORKER 0", "WORKER 1", "AGENT null");
    assertThat(names(all))
        .endsWith(
            "torchelastic.worker.status.SUCCEEDED",
            "dynamic_rendezvous.py:_DistributedRendezvousOpExecutor._mark_rendezvous_closed",
            "dynamic_rendezvous.py:_DistributedRendezvousOpExecutor.run",
            "dynamic_rendezvous.py:DynamicRendezvousHandler._close");
    Map<String, Object> joined =
        all(all, "dynamic_rendezvous.py:DynamicRendezvousHandler.next_rendezvous").get(3);
    assertThat(joined)
        .containsEntry("rank", 0)
        .containsEntry("node_state", "RUNNING")
        .containsEntry("master_endpoint", "")
        .containsEntry("error_trace", "");
    assertThat((String) joined.get("message")).contains("has joined round 1 of the rendezvous");
    assertThat(new ArrayList<>(joined.keySet()))
        .containsExactly(
            "name",
            "run_id",
            "message",
            "hostname",
            "pid",
            "node_state",
            "master_endpoint",
            "rank",
            "local_id",
            "error_trace");
  }

  /** PyTorch's own events API reads rdzv's event log, line by line, to the same text. */
  @ParameterizedTest
  @EnumSource(Torch.class)
  void pyTorchsEventsApiReadsTheEventLog(Torch torch) throws Exception {
    torch.require();
    Path events = dir.resolve("events.jsonl");
    RunCommandTest.Result r =
        RunCommandTest.rdzv(
            "run",
            "--standalone",
            "--nproc-per-node",
            "2",
            "--max-restarts",
            "1",
            "--event-log",
            events.toString(),
            "--no-python",
            "sh",
            "-c",
            "exit $((LOCAL_RANK + 3))");
    assertThat(r.exit()).as(r.err()).isEqualTo(ExitCode.FAILURE.code());
    int lines = Files.readAllLines(events).size();
    assertThat(lines).isGreaterThan(20);
    List<String> command = new ArrayList<>(torch.python());
    command.add(script("read_events.py").toString());
    command.add(events.toString());
    try (ChildProcess py = ChildProcess.start(command, Map.of())) {
      assertThat(py.awaitExit(Duration.ofSeconds(90))).as(py.output()).isZero();
      assertThat(py.lines()).contains("read " + lines);
      assertThat(py.lines())
          .contains(
              "event agent torchelastic.worker.status.FAILED",
              "event rdzv dynamic_rendezvous.py:DynamicRendezvousHandler._close");
    }
  }

  @Test
  void logLevelAndJsonLogLinesAreAsDocumented() throws Exception {
    try (ChildProcess run =
        rdzv(
            Map.of("LOGLEVEL", "DEBUG"),
            "run",
            "--log-format",
            "json",
            "--standalone",
            "--no-python",
            "true")) {
      assertThat(run.awaitExit(Duration.ofSeconds(60))).as(run.output()).isZero();
      List<Map<String, Object>> lines = new ArrayList<>();
      for (String line : run.lines()) {
        assertThat(line).as("every line is one JSON object").startsWith("{").endsWith("}");
        @SuppressWarnings("unchecked")
        Map<String, Object> m = JSON.readValue(line, LinkedHashMap.class);
        lines.add(m);
      }
      assertThat(lines).isNotEmpty();
      for (Map<String, Object> m : lines) {
        assertThat(new ArrayList<>(m.keySet()))
            .startsWith("time", "level", "logger", "message", "thread", "pid", "host")
            .contains("command", "run_id", "role");
        assertThat((String) m.get("time"))
            .matches("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z");
        assertThat(m.get("command")).isEqualTo("run");
      }
      assertThat(lines).extracting(m -> m.get("level")).contains("DEBUG", "INFO");
      assertThat(lines)
          .extracting(m -> (String) m.get("message"))
          .anyMatch(msg -> msg.startsWith("[default] worker group successfully finished."));
    }
    try (ChildProcess quiet =
        rdzv(Map.of("LOGLEVEL", "WARNING"), "run", "--standalone", "--no-python", "true")) {
      assertThat(quiet.awaitExit(Duration.ofSeconds(60))).as(quiet.output()).isZero();
      assertThat(quiet.lines()).noneMatch(l -> l.startsWith("INFO:") || l.startsWith("DEBUG:"));
    }
    try (ChildProcess bad =
        rdzv(Map.of("LOGLEVEL", "LOUD"), "run", "--standalone", "--no-python", "true")) {
      assertThat(bad.awaitExit(Duration.ofSeconds(60))).isEqualTo(ExitCode.USAGE.code());
      assertThat(bad.lines())
          .containsExactly(
              "rdzv run: LOGLEVEL 'LOUD' is not a log level; use DEBUG, INFO, WARNING, ERROR or"
                  + " CRITICAL.");
    }
  }

  @Test
  void logLevelsReadAsTorchrunReadsThem() {
    assertThat(Logging.level("DEBUG")).isEqualTo(java.util.logging.Level.FINE);
    assertThat(Logging.level("info")).isEqualTo(java.util.logging.Level.INFO);
    assertThat(Logging.level("WARN")).isEqualTo(java.util.logging.Level.WARNING);
    assertThat(Logging.level("ERROR")).isEqualTo(java.util.logging.Level.SEVERE);
    assertThat(Logging.level("CRITICAL")).isEqualTo(java.util.logging.Level.OFF);
    assertThat(Logging.level("NOTSET")).isNull();
    assertThat(Logging.level(null)).isNull();
    assertThat(Logging.levelName(java.util.logging.Level.SEVERE)).isEqualTo("ERROR");
    assertThat(Logging.levelName(java.util.logging.Level.FINE)).isEqualTo("DEBUG");
    assertThat(Logging.levelName(java.util.logging.Level.FINER)).isEqualTo("TRACE");
  }

  @Test
  void aBusyMetricsPortIsOneLineAndExitOne() throws Exception {
    try (java.net.ServerSocket taken = new java.net.ServerSocket(0)) {
      RunCommandTest.Result r =
          RunCommandTest.rdzv(
              "run",
              "--standalone",
              "--metrics-host",
              "127.0.0.1",
              "--metrics-port",
              "" + taken.getLocalPort(),
              "--no-python",
              "true");
      assertThat(r.exit()).isEqualTo(ExitCode.FAILURE.code());
      assertThat(r.err().strip())
          .startsWith(
              "rdzv run: the metrics server cannot listen on 127.0.0.1:" + taken.getLocalPort());
      assertThat(r.err()).doesNotContain("\tat ");
    }
  }

  /** The index of the first line that matches {@code regex} whole, or -1. */
  private static int indexOf(List<String> lines, String regex) {
    for (int i = 0; i < lines.size(); i++) {
      if (lines.get(i).matches(regex)) {
        return i;
      }
    }
    return -1;
  }

  private static Path script(String name) throws URISyntaxException {
    return Path.of(ObservabilityTest.class.getResource("/py/" + name).toURI());
  }

  private static List<Map<String, Object>> read(Path file) throws IOException {
    List<Map<String, Object>> events = new ArrayList<>();
    for (String line : Files.readAllLines(file)) {
      @SuppressWarnings("unchecked")
      Map<String, Object> m = JSON.readValue(line, LinkedHashMap.class);
      events.add(m);
    }
    return events;
  }

  private static List<String> names(List<Map<String, Object>> events) {
    return events.stream().map(e -> (String) e.get("name")).toList();
  }

  private static List<Map<String, Object>> all(List<Map<String, Object>> events, String name) {
    return events.stream().filter(e -> name.equals(e.get("name"))).toList();
  }

  private static Map<String, Object> only(List<Map<String, Object>> events, String name) {
    List<Map<String, Object>> found = all(events, name);
    assertThat(found).as(name).hasSize(1);
    return found.get(0);
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> metadata(Map<String, Object> event) {
    return (Map<String, Object>) event.get("metadata");
  }
}
