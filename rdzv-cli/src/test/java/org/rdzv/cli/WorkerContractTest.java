package org.rdzv.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.rdzv.testing.ChildProcess;
import org.rdzv.testing.FreePort;
import org.rdzv.testing.Torch;

/**
 * The worker contract of PyTorch 2.x, variable by variable: one command line under torchrun 2.6 and
 * under {@code rdzv run} (both with PyTorch 2.6 workers), every worker's whole environment dumped
 * and diffed. Only the documented exceptions (docs/launcher.md) may differ, and only in the way
 * documented:
 *
 * <ul>
 *   <li>{@code MASTER_PORT}: a free port picked at run time (with {@code --standalone});
 *   <li>{@code TORCHELASTIC_RUN_ID}: the random run id of {@code --standalone};
 *   <li>{@code TORCHELASTIC_ERROR_FILE}: the same layout, with random directory names ({@code
 *       <tmp>/torchelastic_<random>/<run id>_<random>/attempt_<n>/<local rank>/error.json}).
 * </ul>
 */
@Timeout(300)
class WorkerContractTest {
  private static final Pattern ERROR_FILE =
      Pattern.compile("\"/tmp/torchelastic_[^/]+/[^/]+_[^/]+/attempt_0/[0-9]+/error.json\"");

  @TempDir Path dir;

  private static Path script() {
    try {
      return Path.of(WorkerContractTest.class.getResource("/py/env_dump.py").toURI());
    } catch (URISyntaxException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Each rank's environment, NAME to its JSON-encoded value. */
  private Map<Integer, Map<String, String>> dumps(String tag, int ranks) throws IOException {
    Map<Integer, Map<String, String>> all = new TreeMap<>();
    for (int rank = 0; rank < ranks; rank++) {
      Map<String, String> env = new TreeMap<>();
      for (String line : Files.readAllLines(dir.resolve(tag + "." + rank + ".env"))) {
        int tab = line.indexOf('\t');
        env.put(line.substring(0, tab), line.substring(tab + 1));
      }
      all.put(rank, env);
    }
    return all;
  }

  /** Runs {@code flags} under both launchers and diffs what each worker saw. */
  private void assertSameContract(List<String> flags, int workers, List<String> exceptions)
      throws IOException {
    Torch.V2_6.require();
    Path outDir = Files.createDirectories(dir.resolve("out"));
    List<String> torchrun = new ArrayList<>(Torch.V2_6.torchrun());
    torchrun.addAll(flags);
    torchrun.addAll(List.of(script().toString(), outDir.toString(), "torchrun"));
    try (ChildProcess child = ChildProcess.start(torchrun, Map.of())) {
      assertThat(child.awaitExit(Duration.ofSeconds(120))).as(child.output()).isZero();
    }
    List<String> rdzv =
        new ArrayList<>(List.of("run", "--python", PythonExecutable.of(Torch.V2_6, dir)));
    rdzv.addAll(flags);
    rdzv.addAll(List.of(script().toString(), outDir.toString(), "rdzv"));
    RunCommandTest.Result r = RunCommandTest.rdzv(rdzv.toArray(String[]::new));
    assertThat(r.exit()).as(r.err()).isZero();

    this.dir = outDir;
    Map<Integer, Map<String, String>> theirs = dumps("torchrun", workers);
    Map<Integer, Map<String, String>> ours = dumps("rdzv", workers);
    for (int rank = 0; rank < workers; rank++) {
      Map<String, String> t = theirs.get(rank);
      Map<String, String> o = ours.get(rank);
      assertThat(o.keySet())
          .as("rank %d: variables only one launcher sets", rank)
          .containsExactlyInAnyOrderElementsOf(t.keySet());
      TreeSet<String> differ = new TreeSet<>();
      for (String name : t.keySet()) {
        if (!t.get(name).equals(o.get(name))) {
          differ.add(name);
        }
      }
      assertThat(differ).as("rank %d: torchrun %s, rdzv %s", rank, t, o).isSubsetOf(exceptions);
      if (differ.contains("TORCHELASTIC_ERROR_FILE")) {
        assertThat(o.get("TORCHELASTIC_ERROR_FILE")).matches(ERROR_FILE);
        assertThat(t.get("TORCHELASTIC_ERROR_FILE")).matches(ERROR_FILE);
        assertThat(o.get("TORCHELASTIC_ERROR_FILE")).endsWith("/" + rank + "/error.json\"");
      }
      if (differ.contains("MASTER_PORT")) {
        assertThat(o.get("MASTER_PORT")).matches("\"[0-9]+\"");
      }
    }
  }

  @Test
  void standaloneWorkersSeeWhatTorchrunsWorkersSee() throws IOException {
    assertSameContract(
        List.of(
            "--standalone", "--nproc-per-node", "2", "--max-restarts", "1", "--role", "trainer"),
        2,
        List.of("MASTER_PORT", "TORCHELASTIC_RUN_ID", "TORCHELASTIC_ERROR_FILE"));
  }

  @Test
  void staticWorkersSeeWhatTorchrunsWorkersSee() throws IOException {
    assertSameContract(
        List.of(
            "--nproc_per_node=3",
            "--master-addr=127.0.0.1",
            "--master-port=" + FreePort.next(),
            "--rdzv-id=contract"),
        3,
        List.of("TORCHELASTIC_ERROR_FILE"));
  }
}
