package org.rdzv.launcher;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.System.Logger.Level;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.UUID;
import java.util.stream.Stream;

/**
 * An agent's log directory, laid out as PyTorch's {@code DefaultLogsSpecs}: {@code <base>/<run
 * id>_<random>/attempt_<restart count>/<local rank>/}, where the base is {@code --log-dir} or a
 * fresh {@code torchelastic_*} temporary directory. Unlike PyTorch, a temporary base is removed
 * after a successful run. A base of {@code /dev/null} means no files at all, as in PyTorch 2.x:
 * workers write to the console only and get an empty {@code TORCHELASTIC_ERROR_FILE}.
 */
final class RunLogDirectory {
  private static final System.Logger LOG = System.getLogger(RunLogDirectory.class.getName());

  static final Path DEV_NULL = Path.of("/dev/null");

  private final Path runDir;
  private final boolean temporary;

  private RunLogDirectory(Path runDir, boolean temporary) {
    this.runDir = runDir;
    this.temporary = temporary;
  }

  /**
   * Creates {@code <base>/<runId>_<random>}.
   *
   * @param base {@code --log-dir}, or {@code null} for a temporary directory
   * @throws UncheckedIOException if it cannot be created
   */
  static RunLogDirectory create(Path base, String runId) {
    if (DEV_NULL.equals(base)) {
      return new RunLogDirectory(null, false);
    }
    try {
      Path dir;
      boolean temporary = base == null;
      if (temporary) {
        dir = Files.createTempDirectory("torchelastic_");
      } else {
        dir = base;
        Files.createDirectories(dir);
      }
      String random = UUID.randomUUID().toString().replace("-", "").substring(0, 8);
      return new RunLogDirectory(
          Files.createDirectories(dir.resolve(runId + "_" + random)), temporary);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create the log directory: " + e.getMessage(), e);
    }
  }

  /** The run's directory, or {@code null} for {@code /dev/null}. */
  Path runDir() {
    return runDir;
  }

  /**
   * An empty {@code attempt_<n>} directory, or {@code null} for {@code /dev/null}. A membership
   * change keeps the attempt number, so what an earlier round of the same attempt left is removed
   * first, as PyTorch does.
   */
  Path freshAttempt(int restartCount) {
    if (runDir == null) {
      return null;
    }
    Path attempt = runDir.resolve("attempt_" + restartCount);
    deleteTree(attempt);
    try {
      return Files.createDirectories(attempt);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create log directory " + attempt, e);
    }
  }

  /** Removes the temporary base after a successful run; keeps a {@code --log-dir}. */
  void cleanUpAfterSuccess() {
    if (temporary) {
      deleteTree(runDir.getParent());
    }
  }

  static void deleteTree(Path dir) {
    if (dir == null || !Files.exists(dir)) {
      return;
    }
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException | UncheckedIOException e) {
      LOG.log(Level.DEBUG, "cannot delete {0}: {1}", dir, e.toString());
    }
  }
}
