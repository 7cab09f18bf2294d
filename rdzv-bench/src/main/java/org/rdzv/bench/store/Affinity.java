package org.rdzv.bench.store;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * CPU placement of benchmark processes with {@code taskset} (Linux). The latency run pins its
 * processes because on a small or virtual machine the scheduler's placement, not the software,
 * decides a single client's round trip: two threads sharing a CPU hand over in a few µs, while
 * waking an idle CPU (on a VM: an interrupt to a halted vCPU through the hypervisor) adds about 20
 * µs per hop, and which of the two happens is chosen anew for every process pair.
 */
final class Affinity {
  private static final Path TASKSET = findTaskset();

  private Affinity() {}

  /** Two CPUs this process may use, or an empty list when pinning is not possible. */
  static List<Integer> twoCpus() {
    if (TASKSET == null) {
      return List.of();
    }
    List<Integer> cpus = parse(allowed(ProcessHandle.current().pid()));
    return cpus.size() < 2 ? List.of() : List.of(cpus.get(0), cpus.get(1));
  }

  /** The {@code taskset} command line that starts a program pinned to {@code cpu}. */
  static List<String> launcher(int cpu) {
    return List.of(TASKSET.toString(), "-c", Integer.toString(cpu));
  }

  /** The CPU list a process may run on, as {@code /proc/PID/status} states it ("0-1"). */
  static String allowed(long pid) {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/" + pid + "/status"))) {
        if (line.startsWith("Cpus_allowed_list:")) {
          return line.substring(line.indexOf(':') + 1).strip();
        }
      }
    } catch (IOException e) {
      // fall through
    }
    return "";
  }

  /** Pins every thread of process {@code pid} to {@code cpus} (a taskset CPU list). */
  static void pin(long pid, String cpus) {
    try {
      Process p =
          new ProcessBuilder(TASKSET.toString(), "-a", "-p", "-c", cpus, Long.toString(pid))
              .redirectErrorStream(true)
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .start();
      if (!p.waitFor(10, TimeUnit.SECONDS) || p.exitValue() != 0) {
        p.destroyForcibly();
        throw new IllegalStateException("taskset could not pin process " + pid + " to " + cpus);
      }
    } catch (IOException e) {
      throw new IllegalStateException("taskset failed: " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while pinning process " + pid, e);
    }
  }

  static List<Integer> parse(String list) {
    List<Integer> cpus = new ArrayList<>();
    if (list.isEmpty()) {
      return cpus;
    }
    for (String part : list.split(",")) {
      int dash = part.indexOf('-');
      int from = Integer.parseInt(part.substring(0, dash < 0 ? part.length() : dash).strip());
      int to = dash < 0 ? from : Integer.parseInt(part.substring(dash + 1).strip());
      for (int c = from; c <= to; c++) {
        cpus.add(c);
      }
    }
    return cpus;
  }

  private static Path findTaskset() {
    if (!System.getProperty("os.name", "").toLowerCase(java.util.Locale.ROOT).contains("linux")
        || !Files.isReadable(Path.of("/proc/self/status"))) {
      return null;
    }
    String path = System.getenv("PATH");
    List<String> dirs = new ArrayList<>(List.of("/usr/bin", "/bin"));
    if (path != null) {
      dirs.addAll(0, List.of(path.split(":")));
    }
    for (String dir : dirs) {
      Path candidate = Path.of(dir.isEmpty() ? "." : dir, "taskset");
      if (Files.isExecutable(candidate)) {
        return candidate;
      }
    }
    return null;
  }
}
