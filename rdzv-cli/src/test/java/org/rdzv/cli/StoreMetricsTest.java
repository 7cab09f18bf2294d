package org.rdzv.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.rdzv.store.StoreProtocol;
import org.rdzv.store.TcpStore;
import org.rdzv.store.TcpStoreOptions;
import org.rdzv.testing.Await;
import org.rdzv.testing.ChildProcess;

/** {@code rdzv store --metrics-port}: a live server scraped over HTTP. */
class StoreMetricsTest {
  private static final Pattern LISTENING = Pattern.compile("listening on 127\\.0\\.0\\.1:(\\d+)");
  private static final Pattern METRICS = Pattern.compile("metrics at (http://\\S+)");

  private static String scrape(HttpClient http, String url) throws Exception {
    HttpResponse<String> r =
        http.send(
            HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(),
            HttpResponse.BodyHandlers.ofString());
    assertThat(r.statusCode()).isEqualTo(200);
    assertThat(r.headers().firstValue("Content-Type")).hasValue(MetricsServer.CONTENT_TYPE);
    return r.body();
  }

  /** The value of the sample whose line starts with {@code series}, or -1. */
  private static double sample(String text, String series) {
    for (String line : text.lines().toList()) {
      if (line.startsWith(series + " ")) {
        return Double.parseDouble(line.substring(series.length() + 1).strip());
      }
    }
    return -1;
  }

  @Test
  void aLiveStoreIsScraped() throws Exception {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(List.of("-Xmx128m", "-XX:+UseSerialGC", "-cp"));
    command.add(
        System.getProperty("surefire.test.class.path", System.getProperty("java.class.path")));
    command.add(Main.class.getName());
    command.addAll(
        List.of(
            "store",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--memory-budget",
            "64m"));
    try (ChildProcess child = ChildProcess.start(command, Map.of());
        HttpClient http = HttpClient.newHttpClient()) {
      Matcher listening =
          LISTENING.matcher(child.awaitLine(LISTENING.asPredicate(), Duration.ofSeconds(60)));
      assertThat(listening.find()).isTrue();
      int port = Integer.parseInt(listening.group(1));
      Matcher m = METRICS.matcher(child.awaitLine(METRICS.asPredicate(), Duration.ofSeconds(30)));
      assertThat(m.find()).isTrue();
      String url = m.group(1);
      assertThat(url).startsWith("http://127.0.0.1:").endsWith("/metrics");
      String tag = "port=\"" + port + "\"";

      try (TcpStore store =
          TcpStore.connect(
              TcpStoreOptions.builder("127.0.0.1", port)
                  .protocol(StoreProtocol.V2)
                  .timeout(Duration.ofSeconds(10))
                  .build())) {
        store.set("a", "1");
        store.set("b", "2");
        assertThat(store.add("c", 5)).isEqualTo(5);
        String text = scrape(http, url);
        assertThat(sample(text, "rdzv_store_connections{" + tag + "}")).isEqualTo(1.0);
        assertThat(sample(text, "rdzv_store_keys{" + tag + "}")).isEqualTo(3.0);
        assertThat(sample(text, "rdzv_store_requests_total{command=\"set\"," + tag + "}"))
            .isEqualTo(2.0);
        assertThat(sample(text, "rdzv_store_requests_total{command=\"add\"," + tag + "}"))
            .isEqualTo(1.0);
        assertThat(sample(text, "rdzv_store_received_bytes_total{" + tag + "}")).isPositive();
        assertThat(sample(text, "rdzv_store_sent_bytes_total{" + tag + "}")).isPositive();
        assertThat(sample(text, "rdzv_store_memory_budget_bytes{" + tag + "}"))
            .isEqualTo(64.0 * 1024 * 1024);
        assertThat(sample(text, "rdzv_store_memory_held_bytes{kind=\"data\"," + tag + "}"))
            .isPositive();
        assertThat(text).contains("rdzv_store_waits{" + tag + "}", "jvm_memory_used_bytes");
      }
      // A frame the server refuses is counted by reason.
      try (java.net.Socket bad = new java.net.Socket("127.0.0.1", port)) {
        bad.getOutputStream().write(new byte[] {(byte) 0xff});
        assertThat(bad.getInputStream().read()).isEqualTo(-1);
      }
      String last = scrape(http, url);
      Await.until(
          "the refusal is counted and the connection gone: "
              + last.lines().filter(l -> l.startsWith("rdzv_store_")).toList(),
          Duration.ofSeconds(10),
          () -> {
            try {
              String text = scrape(http, url);
              return sample(
                          text,
                          "rdzv_store_frames_rejected_total{"
                              + tag
                              + ",reason=\"unknown_command\"}")
                      == 1.0
                  && sample(text, "rdzv_store_connections{" + tag + "}") == 0.0
                  && sample(text, "rdzv_store_connections_accepted_total{" + tag + "}") >= 2.0;
            } catch (Exception e) {
              throw new AssertionError(e);
            }
          });
      HttpResponse<String> notFound =
          http.send(
              HttpRequest.newBuilder(URI.create(url.replace("/metrics", "/nope"))).build(),
              HttpResponse.BodyHandlers.ofString());
      assertThat(notFound.statusCode()).isEqualTo(404);
      assertThat(child.lines().stream().filter(l -> l.contains("listening on"))).hasSize(1);
    }
  }
}
