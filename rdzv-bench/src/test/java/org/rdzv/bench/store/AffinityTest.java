package org.rdzv.bench.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.List;
import org.junit.jupiter.api.Test;

class AffinityTest {
  @Test
  void parsesKernelCpuLists() {
    assertThat(Affinity.parse("0-1")).containsExactly(0, 1);
    assertThat(Affinity.parse("0,2-4,7")).containsExactly(0, 2, 3, 4, 7);
    assertThat(Affinity.parse("3")).containsExactly(3);
    assertThat(Affinity.parse("")).isEmpty();
  }

  @Test
  void ownCpuListIsReadWhereProcExists() {
    List<Integer> cpus = Affinity.parse(Affinity.allowed(ProcessHandle.current().pid()));
    if (new java.io.File("/proc/self/status").canRead()) {
      assertThat(cpus).isNotEmpty();
    } else {
      assertThat(cpus).isEmpty();
    }
  }
}
