package org.rdzv.store.bench;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Predicate;

/** A benchmark participant in a process of its own, talking over stdin/stdout lines. */
final class Child implements AutoCloseable {
  private final String name;
  private final Process process;
  private final List<String> lines = new CopyOnWriteArrayList<>();
  private final Thread reader;

  private Child(String name, Process process) {
    this.name = name;
    this.process = process;
    this.reader =
        Thread.ofPlatform()
            .daemon()
            .name("bench-" + name)
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

  static Child start(String name, List<String> command) {
    try {
      ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
      return new Child(name, builder.start());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot start " + name + ": " + e.getMessage(), e);
    }
  }

  /** A JVM running {@link BenchProcess} with {@code args}, on this JVM's class path. */
  static Child java(String name, List<String> jvmOptions, String... args) {
    return java(name, List.of(), jvmOptions, args);
  }

  /** Like {@link #java(String, List, String...)}, run through {@code launcher} (e.g. taskset). */
  static Child java(String name, List<String> launcher, List<String> jvmOptions, String... args) {
    List<String> command = new ArrayList<>(launcher);
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.add("-XX:+UseSerialGC");
    command.addAll(jvmOptions);
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(BenchProcess.class.getName());
    command.addAll(List.of(args));
    return start(name, command);
  }

  long pid() {
    return process.pid();
  }

  String awaitLine(Predicate<String> match, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    int from = 0;
    while (true) {
      List<String> snapshot = lines;
      for (int i = from; i < snapshot.size(); i++) {
        if (match.test(snapshot.get(i))) {
          return snapshot.get(i);
        }
      }
      if (!process.isAlive() && !reader.isAlive()) {
        for (String line : lines) {
          if (match.test(line)) {
            return line;
          }
        }
        throw new IllegalStateException(
            name + " exited with " + process.exitValue() + ": " + tail());
      }
      if (System.nanoTime() - deadline > 0) {
        throw new IllegalStateException("timed out waiting for " + name + ": " + tail());
      }
      LockSupport.parkNanos(2_000_000);
    }
  }

  /**
   * Like {@link #awaitLine} for the first line starting with {@code prefix} after index {@code
   * from}.
   */
  String awaitPrefix(String prefix, Duration timeout) {
    return awaitLine(l -> l.startsWith(prefix), timeout);
  }

  void consume(String line) {
    lines.remove(line);
  }

  void send(String line) {
    try {
      process.getOutputStream().write((line + "\n").getBytes(StandardCharsets.UTF_8));
      process.getOutputStream().flush();
    } catch (IOException e) {
      throw new UncheckedIOException(name + " is gone: " + e.getMessage(), e);
    }
  }

  private String tail() {
    List<String> all = lines;
    return String.join(" | ", all.subList(Math.max(0, all.size() - 8), all.size()));
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
