package org.rdzv.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.rdzv.testing.Peers;
import org.rdzv.testing.PythonProcess;

/** The failure summary and error-file reading, checked against PyTorch 1.13's own formatter. */
class FailureSummaryTest {
  @TempDir Path dir;

  @Test
  void summaryIsByteForByteWhatPytorchPrints() throws Exception {
    Peers.requireTorch();
    Path errorFile = dir.resolve("error.json");
    Files.writeString(
        errorFile,
        "{\"message\": {\"message\": \"RuntimeError: boom from rank 3\", \"extraInfo\": {\"py_callstack\": "
            + "\"Traceback (most recent call last):\\n  File \\\"w.py\\\", line 3\\nRuntimeError: boom from rank 3\\n\","
            + " \"timestamp\": \"1795719036\"}}}");
    Map<Integer, ProcessFailure> failures = new LinkedHashMap<>();
    failures.put(
        0,
        ProcessFailure.of(
            0, 0, 4242, 1, dir.resolve("missing.json"), Instant.ofEpochSecond(1795719040L)));
    failures.put(
        3, ProcessFailure.of(1, 3, 17680, 1, errorFile, Instant.ofEpochSecond(1795719050L)));
    String ours =
        FailureSummary.format("worker_env.py", failures, "localhost", ZoneId.systemDefault());

    String script =
        """
        import sys, socket
        from unittest import mock
        from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure
        with mock.patch("time.time", return_value=1795719040):
            f0 = ProcessFailure(local_rank=0, pid=4242, exitcode=1, error_file=sys.argv[2])
        f3 = ProcessFailure(local_rank=1, pid=17680, exitcode=1, error_file=sys.argv[1])
        socket.getfqdn = lambda *a: "localhost"
        print(ChildFailedError("worker_env.py", {0: f0, 3: f3}).format_msg(), end="")
        print("\\n<END>")
        """;
    try (PythonProcess py =
        PythonProcess.start(
            script, List.of(errorFile.toString(), dir.resolve("missing.json").toString()))) {
      py.awaitLine("<END>"::equals, Duration.ofSeconds(60));
      List<String> lines = py.lines();
      String theirs = String.join("\n", lines.subList(0, lines.indexOf("<END>")));
      assertThat("\n" + ours).isEqualTo(theirs);
    }
  }

  @Test
  void rootCauseIsTheEarliestFailureAndOthersAreListed() {
    Map<Integer, ProcessFailure> failures = new LinkedHashMap<>();
    failures.put(2, ProcessFailure.of(0, 2, 10, -15, null, Instant.ofEpochSecond(200)));
    failures.put(5, ProcessFailure.of(1, 5, 11, 7, null, Instant.ofEpochSecond(100)));
    String text = FailureSummary.format("train", failures, "h", ZoneId.of("UTC"));

    String root = text.substring(text.indexOf("Root Cause"));
    assertThat(root).contains("rank      : 5 (local_rank: 1)").contains("1970-01-01_00:01:40");
    String others = text.substring(text.indexOf("Failures:"), text.indexOf("Root Cause"));
    assertThat(others)
        .contains("rank      : 2 (local_rank: 0)")
        .contains("exitcode  : -15 (pid: 10)")
        .contains("traceback : Signal 15 (SIGTERM) received by PID 10");
    assertThat(new RunResult(WorkerState.FAILED, failures, 0, 1).rootCause().globalRank())
        .isEqualTo(5);
    assertThat(text.lines().findFirst().orElseThrow())
        .isEqualTo("=".repeat(60)); // capped, as PyTorch
  }

  @Test
  void aMalformedErrorFileStillReportsTheFailure() throws Exception {
    Path file = dir.resolve("error.json");
    Files.writeString(file, "{not json");
    ProcessFailure f = ProcessFailure.of(0, 0, 1, 2, file, Instant.EPOCH);
    assertThat(f.message()).isEqualTo("malformed error file: {not json");
    assertThat(f.exitCode()).isEqualTo(2);
  }

  @Test
  void aPlainStringMessageUsesItsTopLevelTimestamp() throws Exception {
    Path file = dir.resolve("error.json");
    Files.writeString(file, "{\"message\": \"plain failure\", \"timestamp\": 1234}");
    ProcessFailure f = ProcessFailure.of(0, 0, 1, 2, file, Instant.EPOCH);
    assertThat(f.message()).isEqualTo("plain failure");
    assertThat(f.timestamp()).isEqualTo(Instant.ofEpochSecond(1234));
  }

  @Test
  void jvmSignalStatusesBecomeNegativeExitCodes() {
    assertThat(ProcessFailure.torchExitCode(137)).isEqualTo(-9);
    assertThat(ProcessFailure.torchExitCode(143)).isEqualTo(-15);
    assertThat(ProcessFailure.torchExitCode(1)).isEqualTo(1);
    assertThat(ProcessFailure.torchExitCode(128)).isEqualTo(128);
  }

  @Test
  void anEmptySummaryIsRefused() {
    assertThatThrownBy(() -> FailureSummary.format("x", Map.of(), "h", ZoneId.of("UTC")))
        .isInstanceOf(IllegalArgumentException.class);
  }

  @Test
  void rootCauseIsCopiedToTheAgentsErrorFileWithItsExitCode() throws Exception {
    Path child = dir.resolve("child.json");
    Files.writeString(
        child,
        "{\"message\": {\"message\": \"RuntimeError: x\", \"extraInfo\": {\"py_callstack\": \"tb\", \"timestamp\": \"5\"}}}");
    ProcessFailure f = ProcessFailure.of(0, 0, 1, 3, child, Instant.EPOCH);
    Path target = dir.resolve("out/agent.json");
    Launcher.propagateRootCause(f, target.toString());
    assertThat(Files.readString(target))
        .isEqualTo(
            "{\"message\": {\"message\": \"RuntimeError: x\", \"extraInfo\": {\"py_callstack\": \"tb\", \"timestamp\": \"5\"}, \"errorCode\": 3}}");
  }
}
