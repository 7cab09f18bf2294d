package org.rdzv.store;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
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
    TcpStoreServerOptions.Builder options = TcpStoreServerOptions.builder().host("127.0.0.1");
    for (String arg : args) {
      String name = arg.substring(0, arg.indexOf('='));
      String value = arg.substring(arg.indexOf('=') + 1);
      switch (name) {
        case "maxValueLength" -> options.maxValueLength(Integer.parseInt(value));
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
        System.gc();
        System.out.println(
            "stats running="
                + server.isRunning()
                + " connections="
                + server.connectionCount()
                + " waits="
                + server.pendingWaits()
                + " keys="
                + server.numKeys()
                + " heap="
                + (rt.totalMemory() - rt.freeMemory()));
        System.out.flush();
      }
    }
    server.close();
  }
}
