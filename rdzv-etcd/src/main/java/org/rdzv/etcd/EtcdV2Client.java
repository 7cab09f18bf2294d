package org.rdzv.etcd;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A minimal client of etcd's v2 keys API ({@code /v2/keys}) over {@link HttpClient}: what
 * python-etcd does for PyTorch (get, put with the compare conditions, delete, long-poll watch).
 *
 * <p>Requests go to the preferred member; one that cannot be reached is skipped for the next (reads
 * and watches also move on when a member fails mid-answer, since repeating them is harmless; writes
 * only when the connection was never made, so a compare-and-set is never sent twice). Every failure
 * is an {@link EtcdV2Exception}. Thread-safe; the underlying {@link HttpClient} is shared by all
 * clients with the same TLS settings, so a process running many nodes keeps one selector thread.
 */
final class EtcdV2Client {
  private static final ObjectMapper JSON =
      new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);
  private static final Map<List<Object>, HttpClient> SHARED = new ConcurrentHashMap<>();

  /** One etcd v2 node (a key or a directory). */
  record Node(
      String key,
      String value,
      boolean dir,
      long createdIndex,
      long modifiedIndex,
      long ttl,
      List<Node> nodes) {}

  /**
   * An answer: the action, the node, the node before a write, and the store's {@code X-Etcd-Index}.
   */
  record Result(String action, Node node, Node prevNode, long etcdIndex) {}

  private final EtcdConnection connection;
  private final HttpClient http;
  private final List<String> bases;
  private final AtomicInteger preferred = new AtomicInteger();

  private EtcdV2Client(EtcdConnection connection) {
    this.connection = connection;
    this.bases = connection.urls().stream().map(u -> u + "/v2/keys").toList();
    this.http =
        SHARED.computeIfAbsent(
            java.util.Arrays.asList(
                connection.protocol(),
                connection.clientCert(),
                connection.clientKey(),
                connection.caCert()),
            k -> {
              HttpClient.Builder builder =
                  HttpClient.newBuilder()
                      .version(HttpClient.Version.HTTP_1_1)
                      .connectTimeout(Duration.ofSeconds(10));
              if (connection.tls()) {
                builder.sslContext(Tls.context(connection));
              }
              return builder.build();
            });
  }

  static EtcdV2Client create(EtcdConnection connection) {
    return new EtcdV2Client(connection);
  }

  EtcdConnection connection() {
    return connection;
  }

  /** Reads a key or a directory ({@code recursive}: with every descendant). */
  Result get(String key, boolean recursive) {
    Map<String, String> query = new LinkedHashMap<>();
    if (recursive) {
      query.put("recursive", "true");
    }
    return execute("GET", key, query, null, connection.readTimeout(), true).orElseThrow();
  }

  /** Writes with form parameters ({@code value}, {@code ttl}, {@code prevExist}, ...). */
  Result put(String key, Map<String, String> form) {
    // A write without conditions is idempotent, so it may be repeated on another member.
    boolean unconditional =
        !form.containsKey("prevValue")
            && !form.containsKey("prevIndex")
            && !form.containsKey("prevExist")
            && !form.containsKey("refresh");
    return execute("PUT", key, Map.of(), form, connection.readTimeout(), unconditional)
        .orElseThrow();
  }

  /** Creates an in-order key under the directory {@code dir} (v2's {@code POST}); not repeated. */
  Result post(String dir, Map<String, String> form) {
    return execute("POST", dir, Map.of(), form, connection.readTimeout(), false).orElseThrow();
  }

  /** Lists a directory's children sorted by key (in-order keys sort by creation). */
  Result listSorted(String dir) {
    Map<String, String> query = new LinkedHashMap<>();
    query.put("sorted", "true");
    return execute("GET", dir, query, null, connection.readTimeout(), true).orElseThrow();
  }

  /** Deletes, with conditions ({@code prevValue}, {@code prevIndex}, {@code dir}, ...). */
  Result delete(String key, Map<String, String> query) {
    return execute("DELETE", key, query, null, connection.readTimeout(), false).orElseThrow();
  }

  /**
   * Waits for the first change of {@code key} (or below it, when {@code recursive}) with an index
   * of at least {@code waitIndex}; empty when {@code timeout} passes first or etcd ends the wait
   * without an event. An index older than etcd's event history gives an {@link
   * EtcdV2Exception#EVENT_INDEX_CLEARED} error.
   */
  Optional<Result> watch(String key, long waitIndex, boolean recursive, Duration timeout) {
    if (timeout.isNegative() || timeout.isZero()) {
      return Optional.empty();
    }
    Map<String, String> query = new LinkedHashMap<>();
    query.put("wait", "true");
    query.put("waitIndex", Long.toString(waitIndex));
    if (recursive) {
      query.put("recursive", "true");
    }
    return execute("GET", key, query, null, timeout, true);
  }

  /** Form or query parameters, in order: {@code form("value", v, "ttl", "5")}. */
  static Map<String, String> form(String... pairs) {
    Map<String, String> map = new LinkedHashMap<>();
    for (int i = 0; i < pairs.length; i += 2) {
      if (pairs[i + 1] != null) {
        map.put(pairs[i], pairs[i + 1]);
      }
    }
    return map;
  }

  private Optional<Result> execute(
      String method,
      String key,
      Map<String, String> query,
      Map<String, String> form,
      Duration timeout,
      boolean repeatable) {
    List<String> failures = new ArrayList<>();
    Throwable lastCause = null;
    int start = preferred.get();
    boolean watch = query.containsKey("wait");
    for (int attempt = 0; attempt < bases.size(); attempt++) {
      int index = (start + attempt) % bases.size();
      String url = bases.get(index) + encodePath(key) + encodeQuery(query);
      HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url));
      if (form != null) {
        request
            .header("Content-Type", "application/x-www-form-urlencoded")
            .method(method, HttpRequest.BodyPublishers.ofString(encodeForm(form)));
      } else {
        request.method(method, HttpRequest.BodyPublishers.noBody());
      }
      CompletableFuture<HttpResponse<String>> future =
          http.sendAsync(request.build(), HttpResponse.BodyHandlers.ofString());
      HttpResponse<String> response;
      try {
        response = future.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
      } catch (InterruptedException e) {
        future.cancel(true);
        throw EtcdV2Exception.interrupted(e);
      } catch (TimeoutException e) {
        future.cancel(true);
        if (watch) {
          return Optional.empty();
        }
        lastCause = e;
        failures.add(connection.endpoints().get(index) + ": no answer within " + timeout);
        if (!repeatable) {
          break;
        }
        continue;
      } catch (ExecutionException e) {
        Throwable cause = e.getCause() != null ? e.getCause() : e;
        lastCause = cause;
        failures.add(connection.endpoints().get(index) + ": " + describe(cause));
        boolean neverConnected =
            cause instanceof ConnectException || cause instanceof HttpConnectTimeoutException;
        if (!(cause instanceof IOException) || !(repeatable || neverConnected)) {
          break;
        }
        continue;
      }
      preferred.set(index);
      return parse(response, watch);
    }
    throw EtcdV2Exception.unavailable(
        "The connection to etcd has failed (" + String.join("; ", failures) + ").", lastCause);
  }

  private static String describe(Throwable cause) {
    String message = cause.getMessage();
    return cause.getClass().getSimpleName()
        + (message == null || message.isEmpty() ? "" : " " + message);
  }

  private static Optional<Result> parse(HttpResponse<String> response, boolean watch) {
    long etcdIndex = response.headers().firstValueAsLong("X-Etcd-Index").orElse(0);
    String body = response.body();
    if (body == null || body.isBlank()) {
      if (watch && response.statusCode() == 200) {
        return Optional.empty();
      }
      throw new EtcdV2Exception(
          EtcdV2Exception.Kind.PROTOCOL,
          0,
          etcdIndex,
          "etcd answered HTTP " + response.statusCode() + " without a body",
          null);
    }
    JsonNode json;
    try {
      json = JSON.readTree(body);
    } catch (IOException e) {
      throw new EtcdV2Exception(
          EtcdV2Exception.Kind.PROTOCOL,
          0,
          etcdIndex,
          "etcd answered HTTP "
              + response.statusCode()
              + " with unreadable JSON: "
              + abbreviate(body),
          e);
    }
    if (json.has("errorCode")) {
      int code = json.path("errorCode").asInt();
      long index = json.path("index").asLong(etcdIndex);
      throw new EtcdV2Exception(
          EtcdV2Exception.Kind.ERROR,
          code,
          index,
          "etcd error "
              + code
              + ": "
              + json.path("message").asText()
              + " ("
              + json.path("cause").asText()
              + ")",
          null);
    }
    if (response.statusCode() / 100 != 2) {
      throw new EtcdV2Exception(
          EtcdV2Exception.Kind.PROTOCOL,
          0,
          etcdIndex,
          "etcd answered HTTP " + response.statusCode() + ": " + abbreviate(body),
          null);
    }
    return Optional.of(
        new Result(
            json.path("action").asText(),
            node(json.get("node")),
            node(json.get("prevNode")),
            etcdIndex));
  }

  private static Node node(JsonNode json) {
    if (json == null || json.isNull()) {
      return null;
    }
    List<Node> children = List.of();
    JsonNode nodes = json.get("nodes");
    if (nodes != null && nodes.isArray()) {
      children = new ArrayList<>(nodes.size());
      for (JsonNode child : nodes) {
        children.add(node(child));
      }
    }
    JsonNode value = json.get("value");
    return new Node(
        json.path("key").asText(),
        value == null || value.isNull() ? null : value.asText(),
        json.path("dir").asBoolean(false),
        json.path("createdIndex").asLong(),
        json.path("modifiedIndex").asLong(),
        json.path("ttl").asLong(0),
        children);
  }

  private static String abbreviate(String text) {
    return text.length() <= 200 ? text : text.substring(0, 200) + "...";
  }

  /** Percent-encodes a key for a URL path, keeping {@code /} and base64's {@code + =}. */
  static String encodePath(String key) {
    String path = key.startsWith("/") ? key : "/" + key;
    StringBuilder out = new StringBuilder(path.length() + 8);
    for (byte b : path.getBytes(StandardCharsets.UTF_8)) {
      int c = b & 0xff;
      if ((c >= 'a' && c <= 'z')
          || (c >= 'A' && c <= 'Z')
          || (c >= '0' && c <= '9')
          || "-._~/+=:@".indexOf(c) >= 0) {
        out.append((char) c);
      } else {
        out.append('%')
            .append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
            .append(Character.toUpperCase(Character.forDigit(c & 0xf, 16)));
      }
    }
    return out.toString();
  }

  private static String encodeQuery(Map<String, String> query) {
    return query.isEmpty() ? "" : "?" + encodeForm(query);
  }

  private static String encodeForm(Map<String, String> form) {
    StringBuilder out = new StringBuilder();
    for (Map.Entry<String, String> e : form.entrySet()) {
      if (out.length() > 0) {
        out.append('&');
      }
      out.append(URLEncoder.encode(e.getKey(), StandardCharsets.UTF_8))
          .append('=')
          .append(URLEncoder.encode(e.getValue(), StandardCharsets.UTF_8));
    }
    return out.toString();
  }
}
