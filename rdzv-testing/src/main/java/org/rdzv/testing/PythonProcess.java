package org.rdzv.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A Python peer ({@link Peers#PYTHON}) running a script, with its output lines collected as they
 * arrive. Always use it in try-with-resources: {@link #close()} kills the process tree.
 */
public final class PythonProcess implements AutoCloseable {
  private final Process process;
  private final List<String> lines = new CopyOnWriteArrayList<>();
  private final Thread reader;

  private PythonProcess(Process process) {
    this.process = process;
    this.reader =
        Thread.ofPlatform()
            .daemon()
            .name("python-" + process.pid())
            .start(
                () -> {
                  try (BufferedReader in =
                      new BufferedReader(
                          new InputStreamReader(
                              process.getInputStream(), StandardCharsets.UTF_8))) {
                    String line;
                    while ((line = in.readLine()) != null) {
                      lines.add(line);
                    }
                  } catch (IOException e) {
                    lines.add("<read error: " + e + ">");
                  }
                });
  }

  /** Starts {@code script} (its text) with {@code args}; stderr is merged into the lines. */
  public static PythonProcess start(String script, List<String> args) {
    return start(script, args, Map.of());
  }

  public static PythonProcess start(String script, List<String> args, Map<String, String> env) {
    try {
      Path file = Files.createTempFile("rdzv-peer-", ".py");
      Files.writeString(file, script);
      file.toFile().deleteOnExit();
      List<String> command = new ArrayList<>();
      command.add(Peers.PYTHON);
      command.add("-u");
      command.add(file.toString());
      command.addAll(args);
      ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
      builder.environment().putAll(env);
      return new PythonProcess(builder.start());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Loads a script from the test class path, e.g. {@code "/py/nodes.py"}. */
  public static String resource(Class<?> anchor, String name) {
    try (var in = anchor.getResourceAsStream(name)) {
      if (in == null) {
        throw new IllegalArgumentException("no resource " + name);
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public List<String> lines() {
    return List.copyOf(lines);
  }

  public Process process() {
    return process;
  }

  /** Waits for the first line matching {@code match}; fails with the output so far on timeout. */
  public String awaitLine(Predicate<String> match, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      for (String line : lines) {
        if (match.test(line)) {
          return line;
        }
      }
      if (!process.isAlive() && !reader.isAlive()) {
        throw new AssertionError(
            "python exited with "
                + process.exitValue()
                + " before the line; output:\n"
                + String.join("\n", lines));
      }
      if (System.nanoTime() - deadline > 0) {
        throw new AssertionError(
            "timed out after "
                + timeout
                + " waiting for a line; output:\n"
                + String.join("\n", lines));
      }
      java.util.concurrent.locks.LockSupport.parkNanos(5_000_000);
    }
  }

  /** Waits for exit and returns the exit code; fails with the output on timeout. */
  public int awaitExit(Duration timeout) {
    try {
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new AssertionError(
            "python still running after " + timeout + "; output:\n" + String.join("\n", lines));
      }
      reader.join(Duration.ofSeconds(5));
      return process.exitValue();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }

  /** The output so far, for assertion messages. */
  public String output() {
    return String.join("\n", lines);
  }

  @Override
  public void close() {
    process.descendants().forEach(ProcessHandle::destroyForcibly);
    process.destroyForcibly();
    try {
      process.waitFor(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
