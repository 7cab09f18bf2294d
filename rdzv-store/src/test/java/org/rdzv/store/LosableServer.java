package org.rdzv.store;

import java.io.IOException;
import java.util.List;

/**
 * A store server in a process of its own, for tests that lose it (kill -9): prints {@code listening
 * on 127.0.0.1:P} and serves until killed or until its standard input closes.
 */
public final class LosableServer {
  private LosableServer() {}

  public static void main(String[] args) throws IOException {
    try (TcpStoreServer server =
        TcpStoreServer.start("", args.length > 0 ? Integer.parseInt(args[0]) : 0)) {
      System.out.println("listening on 127.0.0.1:" + server.port());
      System.out.flush();
      while (System.in.read() >= 0) {
        // serve until stdin closes
      }
    }
  }

  /** The command that runs this class in a new JVM with the test class path. */
  static List<String> command(int port) {
    String java = ProcessHandle.current().info().command().orElse("java");
    String cp =
        System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    return List.of(
        java, "-XX:+UseSerialGC", "-cp", cp, LosableServer.class.getName(), Integer.toString(port));
  }
}
