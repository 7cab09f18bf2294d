package org.rdzv.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.rdzv.store.StoreProtocol;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreOptions;

/** {@code rdzv store} as a process: the listening line, serving both families, SIGTERM. */
class StoreCommandTest {
  private static final Pattern LISTENING = Pattern.compile("listening on 127\\.0\\.0\\.1:(\\d+)");

  @Test
  void servesUntilSigterm() throws Exception {
    String classpath =
        System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    Process process =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp",
                classpath,
                Main.class.getName(),
                "store",
                "--host",
                "127.0.0.1",
                "--port",
                "0")
            .redirectErrorStream(true)
            .start();
    List<String> lines = new CopyOnWriteArrayList<>();
    CompletableFuture<Integer> port = new CompletableFuture<>();
    Thread reader =
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
                      Matcher m = LISTENING.matcher(line);
                      if (m.find()) {
                        port.complete(Integer.parseInt(m.group(1)));
                      }
                    }
                  } catch (IOException e) {
                    port.completeExceptionally(e);
                  }
                  port.completeExceptionally(new AssertionError("no listening line: " + lines));
                });
    try {
      int p = port.get(60, TimeUnit.SECONDS);
      for (StoreProtocol protocol : StoreProtocol.values()) {
        try (TcpStore store =
            TcpStore.connect(
                TcpStoreOptions.builder("127.0.0.1", p)
                    .protocol(protocol)
                    .timeout(Duration.ofSeconds(10))
                    .build())) {
          assertThat(store.add("count", 1)).isPositive();
        }
      }
      // SIGTERM. (Process.destroy() would also close our end of its output pipe.)
      assertThat(process.toHandle().destroy()).isTrue();
      assertThat(process.waitFor(30, TimeUnit.SECONDS))
          .as("exited after SIGTERM: %s", lines)
          .isTrue();
      reader.join(Duration.ofSeconds(5));
      assertThat(lines)
          .as("output, exit code %d", process.exitValue())
          .anyMatch(l -> l.contains("rdzv store: stopped"));
      assertThat(lines.stream().filter(l -> l.contains("listening on"))).hasSize(1);
    } finally {
      process.destroyForcibly();
    }
  }

  @Test
  void portInUseIsOneLineAndExitCodeOne() throws Exception {
    try (java.net.ServerSocket taken =
        new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      CliTest.Result r =
          CliTest.rdzv(
              "store", "--host", "127.0.0.1", "--port", Integer.toString(taken.getLocalPort()));
      assertThat(r.exit()).isEqualTo(ExitCode.FAILURE.code());
      assertThat(r.errLines()).hasSize(1);
      assertThat(r.err()).contains("failed to listen on 127.0.0.1:" + taken.getLocalPort());
    }
  }
}
