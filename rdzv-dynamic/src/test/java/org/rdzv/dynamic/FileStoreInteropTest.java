package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.rdzv.testing.PythonProcess;
import org.rdzv.testing.Torch;

/** Our FileStore and PyTorch's (1.13 and 2.6) read each other's files. */
class FileStoreInteropTest {
  static final String SCRIPT =
      """
      import sys, time
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
      # Stay until killed: at a clean exit PyTorch's FileStore writes bookkeeping keys
      # (1.13: cleanup/), which would race the counting below.
      time.sleep(3600)
      """;

  @ParameterizedTest
  @EnumSource(Torch.class)
  void bothDirections(Torch torch, @TempDir Path dir) {
    torch.require();
    Path file = dir.resolve("store");
    FileStore store = FileStore.open(file, Duration.ofSeconds(10));
    store.set("java-key", "hello");
    store.add("counter", 2);
    store.set("doomed", "x");
    try (PythonProcess py =
        PythonProcess.start(torch, SCRIPT, List.of(file.toString()), java.util.Map.of())) {
      py.awaitLine("done"::equals, Duration.ofSeconds(60));
      assertThat(py.lines()).contains("java-key=hello", "counter=7", "cas=swapped");
      assertThat(store.getString("py-key")).isEqualTo("from python");
      assertThat(store.getString("java-key")).isEqualTo("swapped");
      assertThat(store.add("counter", 0)).isEqualTo(7);
      assertThat(store.check(List.of("doomed"))).isFalse();
      // 2.x's FileStore adds a key of its own at creation, refcount/, which its num_keys counts
      assertThat(store.numKeys()).isEqualTo(torch.is2x() ? 4 : 3);
    }
  }
}
