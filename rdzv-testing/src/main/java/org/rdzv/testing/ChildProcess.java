package org.rdzv.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * A peer process (a JVM, a Python interpreter, torchrun) whose merged stdout and stderr lines are
 * collected as they arrive. Always use it in try-with-resources: {@link #close()} kills the process
 * and everything it started.
 */
public final class ChildProcess implements AutoCloseable {
  private final Process process;
  private final List<String> lines = new CopyOnWriteArrayList<>();
  private final Thread reader;

  private ChildProcess(Process process) {
    this.process = process;
    this.reader =
        Thread.ofPlatform()
            .daemon()
            .name("child-" + process.pid())
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

  /** Starts {@code command} with {@code env} added to this process's environment. */
  public static ChildProcess start(List<String> command, Map<String, String> env) {
    try {
      ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
      builder.environment().putAll(env);
      return new ChildProcess(builder.start());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public Process process() {
    return process;
  }

  public long pid() {
    return process.pid();
  }

  /** The lines so far. */
  public List<String> lines() {
    return List.copyOf(lines);
  }

  /** The output so far, for assertion messages. */
  public String output() {
    return String.join("\n", lines);
  }

  /**
   * Waits for the first line matching {@code match}; fails with the output so far if the process
   * ends without one or {@code timeout} passes.
   */
  public String awaitLine(Predicate<String> match, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      boolean ended = !process.isAlive() && !reader.isAlive();
      for (String line : lines) {
        if (match.test(line)) {
          return line;
        }
      }
      if (ended) {
        throw new AssertionError(
            "the process exited with "
                + process.exitValue()
                + " before a matching line; output:\n"
                + output());
      }
      if (System.nanoTime() - deadline > 0) {
        throw new AssertionError(
            "timed out after " + timeout + " waiting for a line; output:\n" + output());
      }
      java.util.concurrent.locks.LockSupport.parkNanos(5_000_000);
    }
  }

  /**
   * Like {@link #awaitLine}, and removes the line it returns, so that the next call finds the next
   * matching one: for request-and-reply dialogues over standard input and output.
   */
  public String takeLine(Predicate<String> match, Duration timeout) {
    String line = awaitLine(match, timeout);
    lines.remove(line);
    return line;
  }

  /** Waits for exit and returns the exit code; fails with the output on timeout. */
  public int awaitExit(Duration timeout) {
    try {
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        throw new AssertionError("still running after " + timeout + "; output:\n" + output());
      }
      reader.join(Duration.ofSeconds(5));
      return process.exitValue();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted", e);
    }
  }

  /**
   * Waits up to {@code timeout} for the process to exit and its output to be read; returns whether
   * it did. Never fails: for callers (benchmarks) that decide what a late process means.
   */
  public boolean exited(Duration timeout) throws InterruptedException {
    if (!process.waitFor(timeout.toNanos(), TimeUnit.NANOSECONDS)) {
      return false;
    }
    reader.join(Duration.ofSeconds(5));
    return true;
  }

  /** Writes one line to the process's standard input. */
  public void send(String line) {
    try {
      process.getOutputStream().write((line + "\n").getBytes(StandardCharsets.UTF_8));
      process.getOutputStream().flush();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Kills the process and everything it started, at once (a lost node). */
  public void killTree() {
    List<ProcessHandle> tree = process.descendants().toList();
    process.destroyForcibly();
    tree.forEach(ProcessHandle::destroyForcibly);
  }

  @Override
  public void close() {
    killTree();
    try {
      process.waitFor(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
