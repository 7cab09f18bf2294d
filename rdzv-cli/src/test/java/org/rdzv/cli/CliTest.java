package org.rdzv.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The command line as a user meets it: in-process runs of {@link Cli#run}. */
class CliTest {
  record Result(int exit, String out, String err) {
    List<String> errLines() {
      return err.lines().toList();
    }
  }

  static Result rdzv(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    int exit =
        Cli.run(
            new PrintStream(out, true, StandardCharsets.UTF_8),
            new PrintStream(err, true, StandardCharsets.UTF_8),
            args);
    return new Result(
        exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
  }

  @Test
  void helpListsTheFiveCommands() {
    Result r = rdzv("--help");
    assertThat(r.exit).isZero();
    assertThat(r.out.lines().map(String::strip).map(l -> l.split("\\s+")[0]))
        .contains("run", "store", "join", "status", "bench");
  }

  @Test
  void noArgumentsShowsTheUsage() {
    Result r = rdzv();
    assertThat(r.exit).isZero();
    assertThat(r.out).contains("Usage: rdzv");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "run",
        "store",
        "join",
        "status",
        "bench",
        "bench store",
        "bench rendezvous",
        "bench launch"
      })
  void everyCommandHasHelp(String command) {
    String[] words = (command + " --help").split(" ");
    Result r = rdzv(words);
    assertThat(r.exit).isZero();
    assertThat(r.out).startsWith("Usage: rdzv " + command);
  }

  @Test
  void versionNamesTheProject() {
    Result r = rdzv("--version");
    assertThat(r.exit).isZero();
    assertThat(r.out).startsWith("rdzv ").doesNotContain("unknown");
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "--rdzv-backend nope|the rendezvous backend 'nope' is not registered",
        "--rdzv_backend nope|the rendezvous backend 'nope' is not registered",
        "--rdzv-endpoint host:99999|--rdzv-endpoint: The port number of the rendezvous endpoint 'host:99999' must be an integer between 0 and 65536.",
        "--rdzv-endpoint host:abc|--rdzv-endpoint: The port number",
        "--rdzv-endpoint a/b|--rdzv-endpoint: The hostname of the rendezvous endpoint 'a/b'",
        "--nnodes 3:2|--nnodes '3:2': the maximum number of nodes (2) must be at least the minimum (3).",
        "--nnodes 0|--nnodes '0': the minimum number of nodes must be at least 1.",
        "--nnodes two|--nnodes 'two' must be a number of nodes N or a range MIN:MAX.",
        "--rdzv-conf join_timeout=abc|--rdzv-conf: The rendezvous configuration option 'join_timeout' does not represent a valid integer value.",
        "--rdzv_conf last_call_timeout=1.5|option 'last_call_timeout' does not represent a valid integer value.",
        "--rdzv-conf is_host=maybe|option 'is_host' does not represent a valid boolean value.",
        "--rdzv-conf a=1,,b=2|--rdzv-conf: The rendezvous configuration string must be in format",
        "--rdzv-conf join_timeout|option 'join_timeout' must have a value specified.",
        "--no-such-flag|Unknown option: '--no-such-flag'",
        "--nnodes|Missing required parameter for option '--nnodes'",
      })
  void joinRefusesBadInputWithOneLineNamingTheProblem(String args, String expected) {
    Result r = rdzv(("join " + args).split(" "));
    assertThat(r.exit).as(r.err).isEqualTo(ExitCode.USAGE.code());
    assertThat(r.errLines().get(0)).startsWith("rdzv join: ").contains(expected);
    assertThat(r.err).doesNotContain("Exception").doesNotContain("\tat ");
  }

  @Test
  void verboseShowsTheStackTrace() {
    Result r = rdzv("--verbose", "join", "--nnodes", "3:2");
    assertThat(r.exit).isEqualTo(ExitCode.USAGE.code());
    assertThat(r.err).contains("IllegalArgumentException").contains("\tat ");
  }

  @Test
  void bothSpellingsAndEqualsFormsParseTheSameParameters() {
    RendezvousOptions dashes = new RendezvousOptions();
    new picocli.CommandLine(dashes)
        .parseArgs(
            "--rdzv-backend",
            "c10d",
            "--rdzv-endpoint",
            "h:5",
            "--rdzv-id",
            "j",
            "--nnodes",
            "2:4",
            "--rdzv-conf",
            "join_timeout=7",
            "--local-addr",
            "me");
    RendezvousOptions underscores = new RendezvousOptions();
    new picocli.CommandLine(underscores)
        .parseArgs(
            "--rdzv_backend=c10d",
            "--rdzv_endpoint=h:5",
            "--rdzv_id=j",
            "--nnodes=2:4",
            "--rdzv_conf=join_timeout=7",
            "--local_addr=me");
    assertThat(underscores.toParameters("static", "none"))
        .isEqualTo(dashes.toParameters("static", "none"));
    var p = dashes.toParameters("static", "none");
    assertThat(p.backend()).isEqualTo("c10d");
    assertThat(p.minNodes()).isEqualTo(2);
    assertThat(p.maxNodes()).isEqualTo(4);
    assertThat(p.localAddr()).isEqualTo("me");
    assertThat(p.getAsInt("join_timeout")).isEqualTo(7);
  }

  @Test
  void torchrunDefaultsApplyWhenFlagsAreAbsent() {
    RendezvousOptions none = new RendezvousOptions();
    new picocli.CommandLine(none).parseArgs();
    var p = none.toParameters("static", "none");
    assertThat(p.backend()).isEqualTo("static");
    assertThat(p.runId()).isEqualTo("none");
    assertThat(p.minNodes()).isEqualTo(1);
    assertThat(p.maxNodes()).isEqualTo(1);
  }

  @Test
  void oneLineErrorsJoinTheCauseChainWithoutRepeats() {
    var error =
        new org.rdzv.api.RendezvousConnectionException(
            "The connection to the C10d store has failed. See inner exception for details.",
            new java.net.ConnectException("Connection refused"));
    assertThat(Errors.oneLine(error))
        .isEqualTo("The connection to the C10d store has failed: Connection refused");
  }
}
