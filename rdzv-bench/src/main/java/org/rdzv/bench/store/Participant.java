package org.rdzv.bench.store;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.rdzv.testing.ChildProcess;

/**
 * A benchmark participant in a process of its own ({@link ChildProcess}), talking over stdin and
 * stdout lines. The fixture reports a failed wait as a test failure; a benchmark reports it as an
 * {@link IllegalStateException} naming the participant, which the command prints as one line.
 */
final class Participant implements AutoCloseable {
  private final String name;
  private final ChildProcess child;

  private Participant(String name, ChildProcess child) {
    this.name = name;
    this.child = child;
  }

  static Participant start(String name, List<String> command) {
    try {
      return new Participant(name, ChildProcess.start(command, Map.of()));
    } catch (java.io.UncheckedIOException e) {
      throw new IllegalStateException("cannot start " + name + ": " + e.getMessage(), e);
    }
  }

  /** A JVM running {@link BenchProcess} with {@code args}, on this JVM's class path. */
  static Participant java(String name, List<String> jvmOptions, String... args) {
    return java(name, List.of(), jvmOptions, args);
  }

  /** Like {@link #java(String, List, String...)}, run through {@code launcher} (e.g. taskset). */
  static Participant java(
      String name, List<String> launcher, List<String> jvmOptions, String... args) {
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
    return child.pid();
  }

  /** Waits for a line starting with {@code prefix} and takes it (the next wait finds the next). */
  String takePrefix(String prefix, Duration timeout) {
    try {
      return child.takeLine(l -> l.startsWith(prefix), timeout);
    } catch (AssertionError e) {
      throw new IllegalStateException(name + ": " + e.getMessage(), e);
    }
  }

  void send(String line) {
    try {
      child.send(line);
    } catch (java.io.UncheckedIOException e) {
      throw new IllegalStateException(name + " is gone: " + e.getMessage(), e);
    }
  }

  @Override
  public void close() {
    child.close();
  }
}
