package org.rdzv.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousParameters;

/** Pure pieces: JSON, Std flags, role infos, rank arithmetic, defaults, line splitting. */
class PiecesTest {

  @Test
  void roleInfoIsPytorchsJsonAndToleratesOurExtraField() {
    var plain = new RoleInfo("default", 1, 2, false);
    assertThat(new String(plain.encode(), StandardCharsets.UTF_8))
        .isEqualTo("{\"role\": \"default\", \"rank\": 1, \"local_world_size\": 2}");
    var ours = new RoleInfo("default", 0, 4, true);
    assertThat(RoleInfo.decode(ours.encode(), 0)).isEqualTo(ours);
    assertThat(RoleInfo.decode(plain.encode(), 1)).isEqualTo(plain);
    assertThatThrownBy(() -> RoleInfo.decode("{\"rank\": 1}".getBytes(StandardCharsets.UTF_8), 1))
        .hasMessageContaining("the role info of agent 1");
  }

  @Test
  void ranksFollowGroupOrderAndRoleBlocks() {
    List<RoleInfo> infos =
        List.of(
            new RoleInfo("trainer", 0, 2, true),
            new RoleInfo("ps", 1, 1, true),
            new RoleInfo("trainer", 2, 3, true));
    var r2 = Ranks.assign(infos, 2);
    assertThat(r2).isEqualTo(new Ranks(3, 6, 2, 5));
    var r1 = Ranks.assign(infos, 1);
    assertThat(r1).isEqualTo(new Ranks(2, 6, 0, 1));
  }

  @Test
  void jsonRoundTripsWhatErrorFilesHold() {
    String text =
        "{\"message\": {\"message\": \"E: \\\"q\\\" \\u00e9\", \"extraInfo\": {\"n\": -12, \"f\": 1.5, \"ok\": true, \"no\": null, \"l\": [1, \"a\"]}}}";
    Object parsed = Json.parse(text);
    assertThat(Json.write(parsed)).isEqualTo(text);
    assertThatThrownBy(() -> Json.parse("{\"a\": }"))
        .hasMessageContaining("malformed JSON at offset 6");
    assertThatThrownBy(() -> Json.parse("[1] x")).hasMessageContaining("trailing");
  }

  @Test
  void stdParsesPytorchsForms() {
    assertThat(Std.parse("3", 2)).isEqualTo(Map.of(0, Std.ALL, 1, Std.ALL));
    assertThat(Std.parse("0:1,2:2", 3)).isEqualTo(Map.of(0, Std.OUT, 1, Std.NONE, 2, Std.ERR));
    assertThatThrownBy(() -> Std.parse("4", 1))
        .hasMessage("4 does not match: <^[0-3]$> or <^([0-9]+:[0-3],)*[0-9]+:[0-3]$>");
    assertThat(Std.ERR.err()).isTrue();
    assertThat(Std.ERR.out()).isFalse();
  }

  @Test
  void launchDefaultsInjectTimeoutAndARunId() {
    RendezvousParameters p =
        Launcher.withDefaults(new RendezvousParameters("c10d", "h:1", "", 1, 2));
    assertThat(p.runId()).matches("[0-9]+");
    assertThat(p.getAsInt("timeout")).isEqualTo(900);
    RendezvousParameters mine =
        Launcher.withDefaults(
            new RendezvousParameters("c10d", "h:1", "job", 1, 2, Map.of("timeout", "5")));
    assertThat(mine.runId()).isEqualTo("job");
    assertThat(mine.getAsInt("timeout")).isEqualTo(5);
  }

  @Test
  void linesAreSplitAcrossReads() {
    List<String> lines = new ArrayList<>();
    var splitter = new LocalWorkers.LineSplitter();
    byte[] a = "one\ntw".getBytes(StandardCharsets.UTF_8);
    byte[] b = "o\nthree".getBytes(StandardCharsets.UTF_8);
    splitter.feed(a, a.length, l -> lines.add(new String(l, StandardCharsets.UTF_8)));
    splitter.feed(b, b.length, l -> lines.add(new String(l, StandardCharsets.UTF_8)));
    splitter.finish(l -> lines.add(new String(l, StandardCharsets.UTF_8)));
    assertThat(lines).containsExactly("one\n", "two\n", "three\n");
  }

  @Test
  void configRefusesNonsense() {
    var p = new RendezvousParameters("c10d", "", "x", 1, 1);
    assertThatThrownBy(() -> LaunchConfig.builder(p, List.of("a")).nprocPerNode(0).build())
        .hasMessage("--nproc-per-node must be at least 1, not 0.");
    assertThatThrownBy(() -> LaunchConfig.builder(p, List.of()).build())
        .hasMessage("no worker program given.");
    assertThatThrownBy(() -> LaunchConfig.builder(p, List.of("a")).maxRestarts(-1).build())
        .hasMessageContaining("--max-restarts");
  }
}
