package org.rdzv.etcd;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.stream.Collectors;
import org.rdzv.api.Endpoint;
import org.rdzv.api.RendezvousParameters;

/**
 * How to reach an etcd cluster: PyTorch's etcd client options, plus several endpoints.
 *
 * <p>The endpoint may list several cluster members, comma-separated ({@code h1:2379,h2:2379}); a
 * request that cannot reach one member goes to the next. Each member is parsed with PyTorch's
 * {@code parse_rendezvous_endpoint} rules and default port 2379.
 *
 * @param endpoints the cluster members to try, in order; at least one
 * @param protocol {@code http} or {@code https}
 * @param readTimeout the longest wait for one answer from etcd (watches excepted)
 * @param clientCert PEM client certificate, or {@code null}
 * @param clientKey PEM private key of {@code clientCert}, or {@code null}
 * @param caCert PEM certificate of the CA that signed the servers' certificates, or {@code null}
 */
public record EtcdConnection(
    List<Endpoint> endpoints,
    String protocol,
    Duration readTimeout,
    Path clientCert,
    Path clientKey,
    Path caCert) {

  /** PyTorch's default {@code read_timeout}, 60 s. */
  public static final Duration DEFAULT_READ_TIMEOUT = Duration.ofSeconds(60);

  public EtcdConnection {
    endpoints = List.copyOf(endpoints);
    if (endpoints.isEmpty()) {
      throw new IllegalArgumentException("An etcd connection needs at least one endpoint.");
    }
    if (!"http".equals(protocol) && !"https".equals(protocol)) {
      throw new IllegalArgumentException("The protocol must be HTTP or HTTPS.");
    }
    Objects.requireNonNull(readTimeout, "readTimeout");
    if (readTimeout.isNegative() || readTimeout.isZero()) {
      throw new IllegalArgumentException("The read timeout must be a positive integer.");
    }
  }

  /** Plain HTTP to the given comma-separated endpoints, with the default read timeout. */
  public static EtcdConnection of(String endpoints) {
    return new EtcdConnection(
        parseEndpoints(endpoints), "http", DEFAULT_READ_TIMEOUT, null, null, null);
  }

  /**
   * The options of PyTorch's {@code etcd-v2} backend (also used by {@code etcd-v3}): {@code
   * read_timeout} (seconds, default 60, positive), {@code protocol} ({@code http} or {@code https},
   * trimmed and case-insensitive), {@code ssl_cert}, {@code ssl_cert_key}, {@code ca_cert}.
   *
   * @throws IllegalArgumentException with PyTorch's message for a bad option
   */
  public static EtcdConnection forDynamic(RendezvousParameters params) {
    int readTimeout = params.getAsInt("read_timeout", 60);
    if (readTimeout <= 0) {
      throw new IllegalArgumentException("The read timeout must be a positive integer.");
    }
    String protocol = params.getString("protocol").orElse("http").strip().toLowerCase(Locale.ROOT);
    if (!protocol.equals("http") && !protocol.equals("https")) {
      throw new IllegalArgumentException("The protocol must be HTTP or HTTPS.");
    }
    Path cert = path(params, "ssl_cert");
    Path key = cert == null ? null : path(params, "ssl_cert_key");
    return new EtcdConnection(
        parseEndpoints(params.endpoint()),
        protocol,
        Duration.ofSeconds(readTimeout),
        cert,
        key,
        path(params, "ca_cert"));
  }

  /**
   * The options of PyTorch's legacy {@code etcd} handler: {@code protocol} (exactly {@code http} or
   * {@code https}), {@code cert}, {@code key}, {@code cacert}. {@code read_timeout} is accepted too
   * (PyTorch leaves it at python-etcd's default, 60 s).
   *
   * @throws IllegalArgumentException with PyTorch's message for a bad option
   */
  public static EtcdConnection forLegacy(RendezvousParameters params) {
    String protocol = params.getString("protocol").orElse("http");
    if (!protocol.equals("http") && !protocol.equals("https")) {
      throw new IllegalArgumentException("The etcd protocol must be HTTP or HTTPS.");
    }
    int readTimeout = params.getAsInt("read_timeout", 60);
    if (readTimeout <= 0) {
      throw new IllegalArgumentException("The read timeout must be a positive integer.");
    }
    Path cert = path(params, "cert");
    Path key = cert == null ? null : path(params, "key");
    return new EtcdConnection(
        parseEndpoints(params.endpoint()),
        protocol,
        Duration.ofSeconds(readTimeout),
        cert,
        key,
        path(params, "cacert"));
  }

  /**
   * Splits {@code h1:p1,h2:p2} and parses each member with PyTorch's rules (default port 2379); an
   * empty text means {@code localhost:2379}.
   *
   * @throws IllegalArgumentException for a bad member, with PyTorch's message, or an empty item
   */
  public static List<Endpoint> parseEndpoints(String text) {
    String value = text == null ? "" : text.strip();
    if (value.isEmpty()) {
      return List.of(Endpoint.parse("", Endpoint.ETCD_DEFAULT_PORT));
    }
    List<Endpoint> result = new ArrayList<>();
    for (String item : value.split(",", -1)) {
      if (item.isBlank()) {
        throw new IllegalArgumentException(
            "The etcd endpoint list '" + value + "' has an empty item; write h1:p1,h2:p2.");
      }
      result.add(Endpoint.parse(item, Endpoint.ETCD_DEFAULT_PORT));
    }
    return result;
  }

  /** The members as {@code host:port,host:port}, for messages. */
  public String endpointText() {
    return endpoints.stream().map(Endpoint::toString).collect(Collectors.joining(","));
  }

  /** Each member's base URL, {@code http://host:port}. */
  public List<String> urls() {
    return endpoints.stream().map(e -> protocol + "://" + e).toList();
  }

  /** Whether TLS material is configured. */
  boolean tls() {
    return "https".equals(protocol);
  }

  private static Path path(RendezvousParameters params, String key) {
    return params.getString(key).filter(s -> !s.isEmpty()).map(Path::of).orElse(null);
  }
}
