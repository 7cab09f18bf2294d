package org.rdzv.launcher;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Stream;

/**
 * What a node offers its workers, for {@code --nproc-per-node auto|cpu|gpu}: PyTorch's {@code
 * os.cpu_count()} and {@code torch.cuda.device_count()}, found without Python or CUDA.
 *
 * @param cpus online logical CPUs of the machine (like {@code os.cpu_count()}, not limited by a CPU
 *     quota or affinity mask), at least 1
 * @param gpus the NVIDIA GPUs a CUDA program would see here: those the driver lists, narrowed by
 *     {@code CUDA_VISIBLE_DEVICES} as PyTorch reads it; 0 without a driver
 */
public record Devices(int cpus, int gpus) {

  public Devices {
    if (cpus < 1 || gpus < 0) {
      throw new IllegalArgumentException("cpus must be positive and gpus not negative");
    }
  }

  /** This machine, as seen by a process with this JVM's environment. */
  public static Devices detect() {
    return detect(System.getenv(), Path.of("/"));
  }

  /**
   * The machine whose {@code /proc} and {@code /sys} are under {@code root}, seen with {@code env}.
   * CPUs come from {@code sys/devices/system/cpu/online} (else the JVM's count); GPUs from the
   * NVIDIA driver's {@code proc/driver/nvidia/gpus/<PCI bus id>/information}, in PCI bus order (the
   * order NVML and PyTorch's device count use), each with its {@code GPU UUID}.
   */
  public static Devices detect(Map<String, String> env, Path root) {
    return new Devices(
        onlineCpus(root.resolve("sys/devices/system/cpu/online")),
        visibleGpus(env.get("CUDA_VISIBLE_DEVICES"), nvidiaGpus(root)));
  }

  private static int onlineCpus(Path online) {
    try {
      int count = 0;
      for (String range : Files.readString(online).strip().split(",")) {
        String[] ends = range.strip().split("-");
        int first = Integer.parseInt(ends[0].strip());
        int last = ends.length > 1 ? Integer.parseInt(ends[1].strip()) : first;
        count += last - first + 1;
      }
      if (count > 0) {
        return count;
      }
    } catch (IOException | RuntimeException e) {
      // not Linux, or an unexpected format: the JVM's view is the next best
    }
    return Runtime.getRuntime().availableProcessors();
  }

  /** The UUIDs of the GPUs the NVIDIA driver lists, in PCI bus order ("" where unreadable). */
  static List<String> nvidiaGpus(Path root) {
    Path dir = root.resolve("proc/driver/nvidia/gpus");
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    List<String> uuids = new ArrayList<>();
    try (Stream<Path> gpus = Files.list(dir)) {
      for (Path gpu : gpus.sorted().toList()) {
        String uuid = "";
        try {
          for (String line : Files.readAllLines(gpu.resolve("information"))) {
            int colon = line.indexOf(':');
            if (colon > 0 && line.substring(0, colon).strip().equals("GPU UUID")) {
              uuid = line.substring(colon + 1).strip();
            }
          }
        } catch (IOException e) {
          // counted, without a UUID
        }
        uuids.add(uuid);
      }
    } catch (IOException e) {
      return List.of();
    }
    return uuids;
  }

  /**
   * How many of {@code uuids} (the physical GPUs, in order) a CUDA program sees under {@code
   * CUDA_VISIBLE_DEVICES}, by PyTorch's rules ({@code torch.cuda._parse_visible_devices}, {@code
   * _device_count_nvml}): unset, all; a list of ordinals, read like {@code strtoul} ({@code "1gpu"}
   * is 1), ends at the first negative or unparsable entry or at the first ordinal past the last
   * GPU, and is empty if an ordinal repeats; a list of {@code GPU-} UUID prefixes ends at the first
   * entry that matches no GPU, and is empty if one matches several GPUs or repeats; {@code MIG-}
   * entries are counted as listed.
   */
  static int visibleGpus(String visible, List<String> uuids) {
    if (uuids.isEmpty()) {
      return 0;
    }
    if (visible == null) {
      return uuids.size();
    }
    String[] entries = visible.split(",", -1);
    if (visible.startsWith("GPU-") || visible.startsWith("MIG-")) {
      String prefix = visible.substring(0, 4);
      List<String> listed = new ArrayList<>();
      for (String entry : entries) {
        if (listed.contains(entry)) {
          return 0;
        }
        if (!entry.startsWith(prefix)) {
          break;
        }
        listed.add(entry);
      }
      if (prefix.equals("MIG-")) {
        return listed.size();
      }
      List<Integer> ordinals = new ArrayList<>();
      for (String candidate : listed) {
        int found = -1;
        for (int i = 0; i < uuids.size(); i++) {
          if (uuids
              .get(i)
              .toUpperCase(Locale.ROOT)
              .startsWith(candidate.toUpperCase(Locale.ROOT))) {
            if (found >= 0) {
              return 0; // ambiguous prefix
            }
            found = i;
          }
        }
        if (found < 0) {
          break;
        }
        if (ordinals.contains(found)) {
          return 0;
        }
        ordinals.add(found);
      }
      return ordinals.size();
    }
    List<Long> ordinals = new ArrayList<>();
    for (String entry : entries) {
      long ordinal = strtoul(entry.strip());
      if (ordinals.contains(ordinal)) {
        return 0;
      }
      if (ordinal < 0) {
        break;
      }
      ordinals.add(ordinal);
    }
    for (int i = 0; i < ordinals.size(); i++) {
      if (ordinals.get(i) >= uuids.size()) {
        return i;
      }
    }
    return ordinals.size();
  }

  /** The number a text starts with (sign allowed first), or -1 if it starts with none. */
  private static long strtoul(String s) {
    int end = 0;
    while (end < s.length()
        && (Character.isDigit(s.charAt(end)) || (end == 0 && "+-".indexOf(s.charAt(0)) >= 0))) {
      end++;
    }
    try {
      return end == 0 ? -1 : Long.parseLong(s.substring(0, end));
    } catch (NumberFormatException e) {
      return -1; // a lone sign, or too long to be an ordinal
    }
  }
}
