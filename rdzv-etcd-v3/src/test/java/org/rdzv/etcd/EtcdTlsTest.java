package org.rdzv.etcd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.testing.EtcdProcess;
import org.rdzv.testing.Peers;

/**
 * PyTorch's TLS options against a real etcd that serves HTTPS only and requires client
 * certificates: {@code protocol=https} with {@code ssl_cert}/{@code ssl_cert_key}/{@code ca_cert}
 * (etcd-v2, etcd-v3) and {@code cert}/{@code key}/{@code cacert} (etcd). Certificates are made with
 * openssl for the test.
 */
class EtcdTlsTest {
  private static Path dir;
  private static EtcdProcess etcd;

  @BeforeAll
  static void start() throws Exception {
    Peers.requireEtcdServer();
    requireOpenssl();
    dir = Files.createTempDirectory("rdzv-etcd-tls-");
    Files.writeString(
        dir.resolve("server.ext"), "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
    Files.writeString(dir.resolve("client.ext"), "extendedKeyUsage=clientAuth\n");
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=rdzv-test-ca");
    for (String who : List.of("server", "client")) {
      openssl(
          "req",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-keyout",
          who + ".key",
          "-out",
          who + ".csr",
          "-subj",
          "/CN=rdzv-test-" + who);
      openssl(
          "x509",
          "-req",
          "-in",
          who + ".csr",
          "-CA",
          "ca.crt",
          "-CAkey",
          "ca.key",
          "-CAcreateserial",
          "-out",
          who + ".crt",
          "-days",
          "2",
          "-extfile",
          who + ".ext");
    }
    etcd =
        EtcdProcess.startTls(
            dir.resolve("server.crt"), dir.resolve("server.key"), dir.resolve("ca.crt"));
  }

  /**
   * Skips (fails on CI) without the openssl command (Debian's openssl, a ca-certificates
   * dependency).
   */
  private static void requireOpenssl() {
    boolean present;
    try {
      Process p = new ProcessBuilder("openssl", "version").redirectErrorStream(true).start();
      p.getInputStream().readAllBytes();
      present = p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0;
    } catch (IOException e) {
      present = false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      present = false;
    }
    if (!present) {
      String message =
          "the openssl command is needed to make test certificates (apt-get install openssl)";
      if (Peers.isCi()) {
        throw new AssertionError("required on CI (CI=true): " + message);
      }
      org.junit.jupiter.api.Assumptions.abort("skipped: " + message);
    }
  }

  private static void openssl(String... args) throws IOException, InterruptedException {
    List<String> command = new java.util.ArrayList<>();
    command.add("openssl");
    command.addAll(List.of(args));
    Process p =
        new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes());
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as("openssl %s: %s", String.join(" ", args), output).isZero();
  }

  @AfterAll
  static void stop() throws IOException {
    if (etcd != null) {
      etcd.close();
    }
  }

  private static Map<String, String> tls(String backend, boolean withClientCert) {
    Map<String, String> config = new HashMap<>();
    boolean legacy = backend.equals("etcd");
    config.put("protocol", "https");
    config.put(legacy ? "cacert" : "ca_cert", dir.resolve("ca.crt").toString());
    if (withClientCert) {
      config.put(legacy ? "cert" : "ssl_cert", dir.resolve("client.crt").toString());
      config.put(legacy ? "key" : "ssl_cert_key", dir.resolve("client.key").toString());
    }
    config.put(legacy ? "timeout" : "join_timeout", "30");
    config.put("last_call_timeout", "1");
    config.put("read_timeout", "5");
    return config;
  }

  @ParameterizedTest
  @ValueSource(strings = {"etcd", "etcd-v2", "etcd-v3"})
  void aRoundCompletesOverTlsWithAClientCertificate(String backend) {
    RendezvousParameters params =
        new RendezvousParameters(
            backend, etcd.endpoint(), "tls-" + backend, 2, 2, tls(backend, true));
    try (JavaNodes nodes = JavaNodes.start(params, 2, true)) {
      List<JavaNodes.Outcome> outcomes = nodes.await(Duration.ofSeconds(60));
      assertThat(outcomes).extracting(o -> o.info().rank()).containsExactlyInAnyOrder(0, 1);
      assertThat(outcomes)
          .allSatisfy(o -> assertThat(o.greetings()).containsExactly("hello0", "hello1"));
      nodes.handlers.forEach(EtcdBackendTest::closeQuietly);
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"etcd", "etcd-v2", "etcd-v3"})
  void withoutAClientCertificateEtcdRefusesTheConnection(String backend) {
    RendezvousParameters params =
        new RendezvousParameters(
            backend, etcd.endpoint(), "tls-refused-" + backend, 1, 1, tls(backend, false));
    assertThatThrownBy(() -> org.rdzv.api.RendezvousRegistry.handler(params))
        .isInstanceOf(RendezvousConnectionException.class)
        .hasMessageContaining(etcd.endpoint());
  }
}
