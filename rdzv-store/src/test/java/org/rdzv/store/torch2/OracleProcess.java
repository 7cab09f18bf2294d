package org.rdzv.store.torch2;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.rdzv.testing.ChildProcess;

/**
 * {@link Torch2Oracle} in a JVM of its own, so that libtorch's native crash at exit cannot take the
 * test JVM with it; its output lines are collected.
 */
final class OracleProcess implements AutoCloseable {
  private final ChildProcess child;

  private OracleProcess(ChildProcess child) {
    this.child = child;
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
    return new OracleProcess(ChildProcess.start(command, Map.of()));
  }

  String awaitLine(Predicate<String> match, Duration timeout) {
    return child.awaitLine(match, timeout);
  }

  List<String> lines() {
    return child.lines();
  }

  /** Asks the oracle to close its stores and exit, then kills whatever is left. */
  @Override
  public void close() {
    Process process = child.process();
    try {
      if (process.isAlive()) {
        child.send("quit");
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } catch (RuntimeException | InterruptedException e) {
      if (e instanceof InterruptedException) {
        Thread.currentThread().interrupt();
      }
    }
    child.close();
  }
}
