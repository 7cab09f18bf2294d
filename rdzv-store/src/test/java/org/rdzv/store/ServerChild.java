package org.rdzv.store;

import io.micrometer.core.instrument.Measurement;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.rdzv.testing.ChildProcess;

/**
 * A {@link TcpStoreServer} in a JVM of its own, so that tests can give it a small heap and watch it
 * die or survive. Prints {@code listening on 127.0.0.1:PORT}; answers {@code stats} on stdin with
 * one line of its gauges; exits when stdin closes.
 */
final class ServerChild {
  private ServerChild() {}

  /** Starts a child with heap {@code heap} (e.g. "256m") and server options {@code name=value}. */
  static ChildProcess start(String heap, String... options) {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.add("-Xmx" + heap);
    command.add("-XX:+UseSerialGC");
    String extra = System.getenv().getOrDefault("RDZV_TEST_CHILD_JVM_ARGS", "");
    if (!extra.isBlank()) {
      command.addAll(List.of(extra.strip().split("\\s+")));
    }
    command.add("-cp");
    command.add(
        System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")));
    command.add(ServerChild.class.getName());
    command.addAll(List.of(options));
    return ChildProcess.start(command, Map.of());
  }

  /** The port from the child's listening line. */
  static int port(ChildProcess child) {
    String line =
        child.awaitLine(l -> l.startsWith("listening on "), java.time.Duration.ofSeconds(60));
    return Integer.parseInt(line.substring(line.lastIndexOf(':') + 1).strip());
  }

  public static void main(String[] args) throws IOException {
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    TcpStoreServerOptions.Builder options =
        TcpStoreServerOptions.builder().host("127.0.0.1").meterRegistry(registry);
    for (String arg : args) {
      String name = arg.substring(0, arg.indexOf('='));
      String value = arg.substring(arg.indexOf('=') + 1);
      switch (name) {
        case "maxValueLength" -> options.maxValueLength(Integer.parseInt(value));
        case "maxConnections" -> options.maxConnections(Integer.parseInt(value));
        case "memoryBudget" -> options.memoryBudget(Long.parseLong(value));
        case "maxQueuedReplyBytes" -> options.maxQueuedReplyBytes(Long.parseLong(value));
        case "frameIdleTimeout" -> options.frameIdleTimeout(Duration.parse(value));
        case "replyDrainTimeout" -> options.replyDrainTimeout(Duration.parse(value));
        default -> throw new IllegalArgumentException("unknown option " + name);
      }
    }
    TcpStoreServer server = TcpStoreServer.start(options.build());
    System.out.println("listening on 127.0.0.1:" + server.port());
    System.out.flush();
    BufferedReader in =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null) {
      if (line.equals("stats")) {
        Runtime rt = Runtime.getRuntime();
        StringBuilder stats =
            new StringBuilder("stats running=")
                .append(server.isRunning())
                .append(" connections=")
                .append(server.connectionCount())
                .append(" waits=")
                .append(server.pendingWaits())
                .append(" keys=")
                .append(server.numKeys())
                .append(" heap=")
                .append(rt.totalMemory() - rt.freeMemory());
        // The server's own gauges and counters, as name[.tag]=value.
        for (Meter m : registry.getMeters()) {
          String name = m.getId().getName().replace("rdzv.store.", "");
          for (Tag t : m.getId().getTags()) {
            if (!t.getKey().equals("port")) {
              name += "." + t.getValue();
            }
          }
          for (Measurement v : m.measure()) {
            stats.append(' ').append(name).append('=').append((long) v.getValue());
          }
        }
        System.out.println(stats);
        System.out.flush();
      }
    }
    server.close();
  }
}
