package org.rdzv.store.torch2;

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

/** {@link Torch2Oracle} in a JVM of its own, with its output lines collected. */
final class OracleProcess implements AutoCloseable {
  private final Process process;
  private final List<String> lines = new CopyOnWriteArrayList<>();
  private final Thread reader;

  private OracleProcess(Process process) {
    this.process = process;
    this.reader =
        Thread.ofPlatform()
            .daemon()
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
                    lines.add("<read error " + e + ">");
                  }
                });
  }

  static OracleProcess start(String... args) {
    String classpath =
        System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.add("-XX:+UseSerialGC");
    command.add("-Xss2m");
    command.add("--enable-native-access=ALL-UNNAMED");
    command.add(
        "-XX:ErrorFile="
            + Path.of(System.getProperty("java.io.tmpdir"), "rdzv-torch2-oracle-hs_err_%p.log"));
    command.add("-cp");
    command.add(classpath);
    command.add(Torch2Oracle.class.getName());
    command.addAll(List.of(args));
    try {
      return new OracleProcess(new ProcessBuilder(command).redirectErrorStream(true).start());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  String awaitLine(java.util.function.Predicate<String> match, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      for (String line : lines) {
        if (match.test(line)) {
          return line;
        }
      }
      if (!process.isAlive()) {
        // Let the reader drain the rest, then look once more.
        try {
          reader.join(5000);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
        for (String line : lines) {
          if (match.test(line)) {
            return line;
          }
        }
        throw new AssertionError(
            "the oracle exited with " + process.exitValue() + "; output:\n" + output());
      }
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for the oracle; output:\n" + output());
      }
      java.util.concurrent.locks.LockSupport.parkNanos(5_000_000);
    }
  }

  void send(String line) {
    try {
      process.getOutputStream().write((line + "\n").getBytes(StandardCharsets.UTF_8));
      process.getOutputStream().flush();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  List<String> lines() {
    return List.copyOf(lines);
  }

  String output() {
    return String.join("\n", lines);
  }

  @Override
  public void close() {
    try {
      if (process.isAlive()) {
        send("quit");
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } catch (RuntimeException | InterruptedException e) {
      // fall through to the kill
    }
    process.destroyForcibly();
  }
}
