package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.rdzv.testing.Peers;
import org.rdzv.testing.PythonProcess;

/** Our FileStore and PyTorch 1.13's read each other's files. */
class FileStoreInteropTest {
  static final String SCRIPT =
      """
      import sys
      from datetime import timedelta
      from torch.distributed import FileStore
      s = FileStore(sys.argv[1], -1)
      s.set_timeout(timedelta(seconds=10))
      print("java-key=" + s.get("java-key").decode(), flush=True)
      print("counter=%d" % s.add("counter", 5), flush=True)
      print("cas=" + s.compare_set("java-key", "hello", "swapped").decode(), flush=True)
      s.set("py-key", "from python")
      s.delete_key("doomed")
      print("done", flush=True)
      """;

  @Test
  void bothDirections(@TempDir Path dir) {
    Peers.requireTorch();
    Path file = dir.resolve("store");
    FileStore store = FileStore.open(file, Duration.ofSeconds(10));
    store.set("java-key", "hello");
    store.add("counter", 2);
    store.set("doomed", "x");
    try (PythonProcess py = PythonProcess.start(SCRIPT, List.of(file.toString()))) {
      py.awaitLine("done"::equals, Duration.ofSeconds(60));
      assertThat(py.lines()).contains("java-key=hello", "counter=7", "cas=swapped");
    }
    assertThat(store.getString("py-key")).isEqualTo("from python");
    assertThat(store.getString("java-key")).isEqualTo("swapped");
    assertThat(store.add("counter", 0)).isEqualTo(7);
    assertThat(store.check(List.of("doomed"))).isFalse();
    assertThat(store.numKeys()).isEqualTo(3);
  }
}
