package org.rdzv.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@code --nproc-per-node} and device counting, on a fake {@code /proc} and {@code /sys}. */
class DevicesTest {
  private static final List<String> FOUR =
      List.of(
          "GPU-aaaa1111-0000-0000-0000-000000000000",
          "GPU-aaaa2222-0000-0000-0000-000000000000",
          "GPU-bbbb3333-0000-0000-0000-000000000000",
          "GPU-cccc4444-0000-0000-0000-000000000000");

  @TempDir Path root;

  /** A node with {@code cpus} online CPUs and the four GPUs of {@link #FOUR}, or none. */
  private Path node(String online, boolean gpus) throws IOException {
    Path cpu = Files.createDirectories(root.resolve("sys/devices/system/cpu"));
    Files.writeString(cpu.resolve("online"), online + "\n");
    if (gpus) {
      for (int i = FOUR.size() - 1; i >= 0; i--) {
        Path gpu =
            Files.createDirectories(
                root.resolve("proc/driver/nvidia/gpus/0000:" + (17 + i) + ":00.0"));
        Files.writeString(
            gpu.resolve("information"),
            "Model: \t\t NVIDIA A100\nIRQ:   \t\t 95\nGPU UUID: \t " + FOUR.get(i) + "\n");
      }
    }
    return root;
  }

  @Test
  void aGpuNodeWith96CoresStartsOneWorkerPerGpu() throws IOException {
    Devices devices = Devices.detect(Map.of(), node("0-95", true));
    assertThat(devices).isEqualTo(new Devices(96, 4));
    assertThat(LocalWorldSize.determine("auto", devices)).isEqualTo(4);
    assertThat(LocalWorldSize.determine("gpu", devices)).isEqualTo(4);
    assertThat(LocalWorldSize.determine("cpu", devices)).isEqualTo(96);
    assertThat(LocalWorldSize.determine("3", devices)).isEqualTo(3);
  }

  @Test
  void withoutGpusAutoIsOneWorkerPerCpuAndGpuIsAnError() throws IOException {
    Devices devices = Devices.detect(Map.of(), node("0-3,8,10-11", false));
    assertThat(devices).isEqualTo(new Devices(7, 0));
    assertThat(LocalWorldSize.determine("auto", devices)).isEqualTo(7);
    assertThatThrownBy(() -> LocalWorldSize.determine("gpu", devices))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageStartingWith("--nproc-per-node gpu: Cuda is not available");
  }

  @Test
  void visibleDevicesNarrowTheCountAsPytorchReadsThem() throws IOException {
    Map<String, String> env = new HashMap<>();
    env.put("CUDA_VISIBLE_DEVICES", "2,0");
    assertThat(Devices.detect(env, node("0-95", true)).gpus()).isEqualTo(2);
    env.put("CUDA_VISIBLE_DEVICES", "");
    Devices none = Devices.detect(env, node("0-95", true));
    assertThat(none.gpus()).isZero();
    assertThat(LocalWorldSize.determine("auto", none)).isEqualTo(96);
  }

  @ParameterizedTest(name = "CUDA_VISIBLE_DEVICES={0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "0,1,2,3|4",
        "1gpu2,2ampere|2", // strtoul: a number followed by anything
        "0,1,-1,2|2", // a negative ordinal ends the list
        "0,x,1|1",
        "3,7,1|1", // an ordinal past the last GPU ends the list
        "0,1,0|0", // a repeated ordinal hides every GPU
        "GPU-aaaa2222,GPU-cccc|2",
        "GPU-aaaa|0", // a prefix matching two GPUs
        "GPU-bbbb,GPU-dddd,GPU-aaaa1|1", // an unknown UUID ends the list
        "GPU-bbbb,0|1",
        "MIG-1,MIG-2|2",
        "' 1 , 2 '|2",
      })
  void visibleDevices(String visible, int expected) {
    assertThat(Devices.visibleGpus(visible, FOUR)).isEqualTo(expected);
  }

  @Test
  void noDriverNoGpusWhateverTheVariableSays() {
    assertThat(Devices.visibleGpus("0,1", List.of())).isZero();
    assertThat(Devices.visibleGpus(null, FOUR)).isEqualTo(4);
  }

  @Test
  void badValuesNameTheFlag() {
    Devices devices = new Devices(2, 0);
    assertThatThrownBy(() -> LocalWorldSize.determine("0", devices))
        .hasMessage(
            "--nproc-per-node '0' must be a positive number, auto or cpu. On a node with GPUs, gpu"
                + " too.");
    assertThatThrownBy(() -> LocalWorldSize.determine("many", devices))
        .hasMessageStartingWith("--nproc-per-node 'many' must be a positive number");
  }
}
