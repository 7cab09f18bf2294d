package org.rdzv.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * A Python peer (PyTorch 1.13's {@link Peers#PYTHON} unless a {@link Torch} is named) running a
 * script, with its output lines collected as they arrive (a {@link ChildProcess}). Always use it in
 * try-with-resources: {@link #close()} kills the process tree.
 */
public final class PythonProcess implements AutoCloseable {
  private final ChildProcess child;

  private PythonProcess(ChildProcess child) {
    this.child = child;
  }

  /** Starts {@code script} (its text) with {@code args}; stderr is merged into the lines. */
  public static PythonProcess start(String script, List<String> args) {
    return start(script, args, Map.of());
  }

  public static PythonProcess start(String script, List<String> args, Map<String, String> env) {
    return start(Torch.V1_13, script, args, env);
  }

  /**
   * Starts {@code script} under {@code torch}'s interpreter. The caller has checked {@link
   * Torch#require()}; the script is written to the temporary directory, which the 2.6 root shares.
   */
  public static PythonProcess start(
      Torch torch, String script, List<String> args, Map<String, String> env) {
    try {
      Path file = Files.createTempFile("rdzv-peer-", ".py");
      Files.writeString(file, script);
      file.toFile().deleteOnExit();
      List<String> command = new ArrayList<>();
      command.addAll(torch.python());
      command.add("-u");
      command.add(file.toString());
      command.addAll(args);
      return new PythonProcess(ChildProcess.start(command, env));
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
    return child.lines();
  }

  public Process process() {
    return child.process();
  }

  /** Waits for the first line matching {@code match}; fails with the output so far on timeout. */
  public String awaitLine(Predicate<String> match, Duration timeout) {
    return child.awaitLine(match, timeout);
  }

  /** Waits for exit and returns the exit code; fails with the output on timeout. */
  public int awaitExit(Duration timeout) {
    return child.awaitExit(timeout);
  }

  /** The output so far, for assertion messages. */
  public String output() {
    return child.output();
  }

  @Override
  public void close() {
    child.close();
  }
}
