package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.rdzv.api.StoreException;
import org.rdzv.store.TcpStore;
import org.rdzv.testing.Await;
import org.rdzv.testing.ChildProcess;
import org.rdzv.testing.FreePort;

/**
 * The README's smallest program, exactly as the README shows it, run by two child JVMs that form
 * one round; the first hosts the store. Both must print their rank and then exit by themselves:
 * closing the handler stops its heartbeats, its connections and the store server it hosts.
 */
class ReadmeSnippetTest {
  private static final Pattern SNIPPET =
      Pattern.compile("The smallest program:.*?```java\\n(.*?)```", Pattern.DOTALL);

  @Test
  void twoNodesRunTheReadmeSnippetAndBothExitByThemselves(@TempDir Path dir) throws IOException {
    String snippet = readmeSnippet();
    assertThat(snippet).contains("\"store-host:29400\"");
    int port = FreePort.next();
    Path source = dir.resolve("Snippet.java");
    Files.writeString(
        source,
        "import java.util.Map;\n"
            + "import org.rdzv.api.*;\n"
            + "public class Snippet {\n"
            + "  public static void main(String[] args) {\n"
            + snippet.replace("\"store-host:29400\"", "\"localhost:" + port + "\"")
            + "  }\n"
            + "}\n",
        StandardCharsets.UTF_8);
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<String> command =
        List.of(java, "-cp", System.getProperty("java.class.path"), source.toString());
    // The node started first binds the port and hosts the store (localhost: is_host is inferred);
    // the second cannot bind it and joins as a client. The host joins before the other starts, so
    // it is the one that waits and reads the completed round last.
    try (ChildProcess host = ChildProcess.start(command, Map.of())) {
      awaitParticipants(port, host);
      try (ChildProcess other = ChildProcess.start(command, Map.of())) {
        assertThat(host.awaitExit(Duration.ofSeconds(120))).as(host.output()).isZero();
        assertThat(other.awaitExit(Duration.ofSeconds(120))).as(other.output()).isZero();
        List<String> ranks = List.of(rankLine(host), rankLine(other)).stream().sorted().toList();
        assertThat(ranks).containsExactly("rank=0 world_size=2", "rank=1 world_size=2");
      }
    }
  }

  /** Waits until the hosting node is a participant of the round, read through its own store. */
  private static void awaitParticipants(int port, ChildProcess host) {
    Await.until(
        "the first node to host the store and join",
        Duration.ofSeconds(120),
        () -> {
          if (!host.process().isAlive()) {
            throw new AssertionError("the first node exited early:\n" + host.output());
          }
          try (TcpStore store = TcpStore.connect("127.0.0.1", port)) {
            return C10dRendezvous.readState(store, "my-job")
                .map(s -> s.participants().size() == 1)
                .orElse(false);
          } catch (StoreException | org.rdzv.api.RendezvousConnectionException e) {
            return false; // not listening yet
          }
        });
  }

  private static String rankLine(ChildProcess node) {
    return node.lines().stream()
        .filter(l -> l.startsWith("rank="))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no rank line:\n" + node.output()));
  }

  private static String readmeSnippet() throws IOException {
    for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
      Path readme = dir.resolve("README.md");
      if (Files.isRegularFile(readme)) {
        Matcher m = SNIPPET.matcher(Files.readString(readme, StandardCharsets.UTF_8));
        if (m.find()) {
          return m.group(1);
        }
      }
    }
    throw new AssertionError("no README.md with the smallest program above " + Path.of(""));
  }
}
