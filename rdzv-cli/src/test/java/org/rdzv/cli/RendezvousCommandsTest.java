package org.rdzv.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreServer;
import org.rdzv.testing.Peers;
import org.rdzv.testing.PythonProcess;
import org.rdzv.testing.Torch;

/**
 * {@code rdzv join}, {@code rdzv status} and {@code rdzv bench rendezvous}, in-process, over a real
 * store.
 */
class RendezvousCommandsTest {
  TcpStoreServer server;
  final String runId = "cli-" + UUID.randomUUID();

  @BeforeEach
  void start() {
    server = TcpStoreServer.start("", 0);
  }

  @AfterEach
  void stop() {
    server.close();
  }

  String endpoint() {
    return "127.0.0.1:" + server.port();
  }

  CliTest.Result join(String nnodes, String... extra) {
    List<String> args =
        new java.util.ArrayList<>(
            List.of(
                "join",
                "--rdzv-backend",
                "c10d",
                "--rdzv-endpoint",
                endpoint(),
                "--rdzv-id",
                runId,
                "--nnodes",
                nnodes,
                "--rdzv-conf",
                "is_host=false,last_call_timeout=1,join_timeout=30"));
    args.addAll(List.of(extra));
    return CliTest.rdzv(args.toArray(String[]::new));
  }

  @Test
  void twoNodesJoinPrintTheirRanksAndLeaveWithoutClosing() throws Exception {
    // Two threads of their own: the common pool may run one task at a time on a small machine.
    var pool = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor();
    var a = CompletableFuture.supplyAsync(() -> join("2"), pool);
    var b = CompletableFuture.supplyAsync(() -> join("2", "--json"), pool);
    CliTest.Result ra = a.get(60, TimeUnit.SECONDS);
    CliTest.Result rb = b.get(60, TimeUnit.SECONDS);
    assertThat(ra.exit()).as(ra.err()).isZero();
    assertThat(rb.exit()).as(rb.err()).isZero();
    assertThat(ra.out().lines().toList()).hasSize(1);
    assertThat(ra.out())
        .containsPattern("^rank=[01] world_size=2 round=0 node=\\S+ run_id=" + runId);
    assertThat(rb.out())
        .containsPattern("^\\{\"rank\": [01], \"world_size\": 2, \"round\": 0, \"node\": ");
    assertThat(ra.out().contains("rank=0") ^ rb.out().contains("\"rank\": 0")).isTrue();
    // both left: the round emptied and the next one opened; nobody closed it
    CliTest.Result status =
        CliTest.rdzv("status", "--rdzv-endpoint", endpoint(), "--rdzv-id", runId);
    assertThat(status.exit()).as(status.err()).isZero();
    assertThat(status.out())
        .contains("round=1 complete=false closed=false")
        .contains("participants=0");
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void statusShowsParticipantsRanksAndHeartbeatAgesOfAPyTorchRendezvousWithoutWriting(Torch torch)
      throws Exception {
    torch.require();
    String script = PythonProcess.resource(RendezvousCommandsTest.class, "/py/two_nodes.py");
    try (PythonProcess py =
            PythonProcess.start(torch, script, List.of(endpoint(), runId), java.util.Map.of());
        TcpStore raw = TcpStore.connect("127.0.0.1", server.port())) {
      py.awaitLine("joined"::equals, Duration.ofSeconds(60));
      CliTest.Result text =
          CliTest.rdzv("status", "--rdzv-endpoint", endpoint(), "--rdzv-id", runId);
      assertThat(text.exit()).as(text.err()).isZero();
      assertThat(text.out())
          .contains(
              "round=0 complete=true closed=false dialect=" + (torch.is2x() ? "2.6+" : "1.13"))
          .contains("participants=2 waiting=0");
      assertThat(text.out())
          .containsPattern("participant rank=0 node=\\S+_\\d+_0 heartbeat_age=\\d+\\.\\ds");
      assertThat(text.out()).containsPattern("participant rank=1 node=\\S+_\\d+_1 heartbeat_age=");
      CliTest.Result json =
          CliTest.rdzv("status", "--rdzv-endpoint", endpoint(), "--rdzv-id", runId, "--json");
      assertThat(json.out())
          .startsWith("{\"run_id\": \"" + runId + "\", \"round\": 0, \"complete\": true");
      // a run that does not exist: reported, and not created
      String missing = runId + "-missing";
      CliTest.Result none =
          CliTest.rdzv("status", "--rdzv-endpoint", endpoint(), "--rdzv-id", missing);
      assertThat(none.out().strip()).isEqualTo("run_id=" + missing + " state=none");
      assertThat(raw.check(List.of("torch.rendezvous." + missing))).isFalse();
    }
  }

  @Test
  void holdStaysUntilSigtermThenLeaves() throws Exception {
    // A real process: --hold waits for a signal. SIGTERM is what Process.destroy() sends.
    String java = ProcessHandle.current().info().command().orElse("java");
    Process p =
        new ProcessBuilder(
                java,
                "-cp",
                System.getProperty("java.class.path"),
                "org.rdzv.cli.Main",
                "join",
                "--rdzv-endpoint",
                endpoint(),
                "--rdzv-id",
                runId,
                "--nnodes",
                "1",
                "--rdzv-conf",
                "is_host=false,last_call_timeout=1",
                "--hold")
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start();
    try (var out = new java.io.BufferedReader(new java.io.InputStreamReader(p.getInputStream()))) {
      String line =
          CompletableFuture.supplyAsync(
                  () -> {
                    try {
                      return out.readLine();
                    } catch (java.io.IOException e) {
                      return null;
                    }
                  })
              .get(60, TimeUnit.SECONDS);
      assertThat(line).startsWith("rank=0 world_size=1 round=0");
      CliTest.Result during =
          CliTest.rdzv("status", "--rdzv-endpoint", endpoint(), "--rdzv-id", runId);
      assertThat(during.out()).contains("participants=1");
      p.destroy();
      assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
      CliTest.Result after =
          CliTest.rdzv("status", "--rdzv-endpoint", endpoint(), "--rdzv-id", runId);
      assertThat(after.out())
          .contains("round=1 complete=false closed=false")
          .contains("participants=0");
    } finally {
      p.destroyForcibly();
    }
  }

  @Test
  void statusAndJoinOverEtcdV2() throws Exception {
    Peers.requireEtcdServer();
    try (org.rdzv.testing.EtcdProcess etcd = org.rdzv.testing.EtcdProcess.start()) {
      CliTest.Result joined =
          CliTest.rdzv(
              "join",
              "--rdzv-backend",
              "etcd-v2",
              "--rdzv-endpoint",
              etcd.endpoint(),
              "--rdzv-id",
              runId,
              "--nnodes",
              "1",
              "--rdzv-conf",
              "last_call_timeout=1");
      assertThat(joined.exit()).as(joined.err()).isZero();
      assertThat(joined.out()).startsWith("rank=0 world_size=1 round=0");
      CliTest.Result status =
          CliTest.rdzv(
              "status",
              "--rdzv-backend",
              "etcd-v2",
              "--rdzv-endpoint",
              etcd.endpoint(),
              "--rdzv-id",
              runId);
      assertThat(status.exit()).as(status.err()).isZero();
      assertThat(status.out()).contains("run_id=" + runId + " round=1 complete=false closed=false");
    }
  }

  @Test
  void joinAgainstNothingFailsWithOneLine() {
    CliTest.Result r =
        CliTest.rdzv(
            "join",
            "--rdzv-endpoint",
            "127.0.0.1:1",
            "--rdzv-id",
            runId,
            "--rdzv-conf",
            "is_host=false,read_timeout=1");
    assertThat(r.exit()).isEqualTo(1);
    assertThat(r.errLines()).hasSize(1);
    assertThat(r.errLines().get(0))
        .startsWith("rdzv join: The connection to the C10d store has failed");
  }

  @Test
  void statusOfAnotherBackendIsAUsageError() {
    CliTest.Result r =
        CliTest.rdzv(
            "status",
            "--rdzv-backend",
            "static",
            "--rdzv-endpoint",
            endpoint(),
            "--rdzv-id",
            runId);
    assertThat(r.exit()).isEqualTo(2);
    assertThat(r.errLines()).hasSize(1);
  }

  @Test
  void benchRendezvousEndsWithNodesAndSeconds() {
    CliTest.Result r = CliTest.rdzv("bench", "rendezvous", "--nodes", "8", "--timeout", "60");
    assertThat(r.exit()).as(r.err()).isZero();
    List<String> lines = r.out().lines().toList();
    assertThat(lines.get(lines.size() - 1)).matches("nodes=8 seconds=\\d+\\.\\d{3}");
  }

  @Test
  void benchCurvePrintsOneLinePerSizeBothProtocolsAndTheExponents() {
    CliTest.Result r =
        CliTest.rdzv(
            "bench",
            "rendezvous",
            "--curve",
            "20,40",
            "--pytorch-curve",
            "10,20",
            "--rdzv-conf",
            "protocol=scalable",
            "--timeout",
            "60");
    assertThat(r.exit()).as(r.err()).isZero();
    List<String> lines = r.out().lines().toList();
    assertThat(lines).hasSize(7);
    assertThat(lines.get(0))
        .matches("curve protocol=scalable nodes=20 seconds=\\d+\\.\\d{3} store_requests=\\d+ .*");
    assertThat(lines.get(1)).startsWith("curve protocol=scalable nodes=40 ");
    assertThat(lines.get(2)).matches("curve protocol=scalable exponent=-?\\d+\\.\\d{2}");
    assertThat(lines.get(3)).startsWith("curve protocol=pytorch nodes=10 ");
    assertThat(lines.get(5)).matches("curve protocol=pytorch exponent=-?\\d+\\.\\d{2}");
    assertThat(lines.get(6)).matches("nodes=40 seconds=\\d+\\.\\d{3}");
  }

  @Test
  void benchCurveOnEtcdV3GivesEachRoundItsOwnEtcdAndCountsItsWrites() {
    Peers.requireEtcdServer();
    CliTest.Result r =
        CliTest.rdzv(
            "bench",
            "rendezvous",
            "--backend",
            "etcd-v3",
            "--curve",
            "20,40",
            "--pytorch-curve",
            "10,20",
            "--rdzv-conf",
            "rendezvous_protocol=scalable",
            "--timeout",
            "60");
    assertThat(r.exit()).as(r.err()).isZero();
    List<String> lines = r.out().lines().toList();
    assertThat(lines).as(r.out()).hasSize(8);
    assertThat(lines.get(0)).startsWith("etcd started afresh for each round");
    assertThat(lines.get(1))
        .matches(
            "curve protocol=scalable nodes=20 seconds=\\d+\\.\\d{3} backend=etcd-v3"
                + " etcd_write_txns=\\d+ write_txns_per_node=\\d+\\.\\d");
    assertThat(lines.get(2)).startsWith("curve protocol=scalable nodes=40 ");
    assertThat(lines.get(3)).matches("curve protocol=scalable exponent=-?\\d+\\.\\d{2}");
    assertThat(lines.get(4)).startsWith("curve protocol=pytorch nodes=10 seconds=");
    assertThat(lines.get(6)).matches("curve protocol=pytorch exponent=-?\\d+\\.\\d{2}");
    assertThat(lines.get(7)).matches("nodes=40 seconds=\\d+\\.\\d{3}");
  }

  @Test
  void benchCurveRefusesABackendItCannotTime() {
    CliTest.Result r = CliTest.rdzv("bench", "rendezvous", "--curve", "10", "--backend", "static");
    assertThat(r.exit()).isEqualTo(2);
    assertThat(r.errLines()).hasSize(1);
    assertThat(r.err()).contains("not --backend static.");
  }

  @Test
  void benchCurveSizesMustBePositive() {
    CliTest.Result r = CliTest.rdzv("bench", "rendezvous", "--curve", "10,0");
    assertThat(r.exit()).isEqualTo(2);
    assertThat(r.errLines()).hasSize(1);
    assertThat(r.err()).contains("--curve sizes must be at least 1, got 0.");
  }
}
