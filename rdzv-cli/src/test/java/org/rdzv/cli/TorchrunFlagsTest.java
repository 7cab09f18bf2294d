package org.rdzv.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.rdzv.testing.ChildProcess;
import org.rdzv.testing.Torch;

/** Every flag of a real torchrun's {@code --help}, in every spelling, is a flag of rdzv run. */
@Timeout(120)
class TorchrunFlagsTest {
  private static final Pattern FLAG = Pattern.compile("(?<![\\w-])(--?[a-z][a-z0-9_-]*)");

  /**
   * The option names of a help text: on each line that starts an option's entry (indented, then a
   * dash), the names before the description column (two spaces) or the value placeholder.
   */
  static Set<String> flags(List<String> help) {
    Set<String> flags = new TreeSet<>();
    for (String line : help) {
      String text = line.stripLeading();
      if (!line.startsWith(" ") || !text.startsWith("-")) {
        continue;
      }
      int column = text.indexOf("  ");
      Matcher m = FLAG.matcher(column < 0 ? text : text.substring(0, column));
      while (m.find()) {
        flags.add(m.group(1));
      }
    }
    return flags;
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void rdzvRunHasEveryFlagOfTorchrun(Torch torch) {
    torch.require();
    List<String> command = new ArrayList<>(torch.torchrun());
    command.add("--help");
    Set<String> theirs;
    try (ChildProcess torchrun = ChildProcess.start(command, java.util.Map.of())) {
      assertThat(torchrun.awaitExit(Duration.ofSeconds(90))).as(torchrun.output()).isZero();
      theirs = flags(torchrun.lines());
    }
    RunCommandTest.Result help = RunCommandTest.rdzv("run", "--help");
    assertThat(help.exit()).isZero();
    Set<String> ours = flags(help.out().lines().toList());

    // The parse found torchrun's flags (not an empty set that anything contains).
    assertThat(theirs).contains("--nproc_per_node", "-m", "--rdzv_conf", "--max_restarts");
    if (torch.is2x()) {
      assertThat(theirs).contains("--nproc-per-node", "--local-ranks-filter", "--logs-specs");
    }
    Set<String> missing = new TreeSet<>(theirs);
    missing.removeAll(ours);
    assertThat(missing).as("torchrun %s flags missing from rdzv run --help", torch).isEmpty();
  }
}
