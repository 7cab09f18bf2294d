package org.rdzv.api;

import java.util.Objects;
import java.util.regex.Pattern;

/**
 * A parsed rendezvous endpoint, {@code host:port}, with PyTorch's {@code parse_rendezvous_endpoint}
 * rules.
 *
 * @param host a host name or an IP literal without brackets
 * @param port 0 to 65535
 */
public record Endpoint(String host, int port) {
  /** Default port of the c10d backend (PyTorch's {@code DEFAULT_PORT}). */
  public static final int C10D_DEFAULT_PORT = 29400;

  /** Default port of the etcd backends. */
  public static final int ETCD_DEFAULT_PORT = 2379;

  private static final Pattern PORT = Pattern.compile("^[0-9]{1,5}$", Pattern.UNIX_LINES);
  private static final Pattern HOST =
      Pattern.compile("^[\\w.:-]+$", Pattern.UNICODE_CHARACTER_CLASS | Pattern.UNIX_LINES);

  public Endpoint {
    Objects.requireNonNull(host, "host");
  }

  /**
   * Parses {@code host}, {@code host:port}, {@code [v6]} or {@code [v6]:port}; an empty or null
   * endpoint means {@code localhost:defaultPort}. As in PyTorch, a bare IPv6 literal without
   * brackets is split at its last colon ({@code ::1} gives host {@code :} and port 1): write {@code
   * [::1]}.
   *
   * @throws IllegalArgumentException with PyTorch's message for a bad port or host name
   */
  public static Endpoint parse(String endpoint, int defaultPort) {
    String value = endpoint == null ? "" : endpoint.strip();
    if (value.isEmpty()) {
      return new Endpoint("localhost", defaultPort);
    }
    String host;
    String portText = null;
    if (value.charAt(0) == '[' && value.charAt(value.length() - 1) == ']') {
      host = value;
    } else {
      int colon = value.lastIndexOf(':');
      if (colon < 0) {
        host = value;
      } else {
        host = value.substring(0, colon);
        portText = value.substring(colon + 1);
      }
    }
    if (host.length() > 1 && host.charAt(0) == '[' && host.charAt(host.length() - 1) == ']') {
      host = host.substring(1, host.length() - 1);
    }
    int port = defaultPort;
    if (portText != null) {
      if (portText.isEmpty() || !PORT.matcher(portText).find()) {
        throw badPort(value);
      }
      port = Integer.parseInt(portText.strip());
      if (port >= 65536) {
        throw badPort(value);
      }
    }
    if (!HOST.matcher(host).find()) {
      throw new IllegalArgumentException(
          "The hostname of the rendezvous endpoint '"
              + value
              + "' must be a dot-separated list of labels, an IPv4 address, or an IPv6 address.");
    }
    return new Endpoint(host, port);
  }

  private static IllegalArgumentException badPort(String endpoint) {
    return new IllegalArgumentException(
        "The port number of the rendezvous endpoint '"
            + endpoint
            + "' must be an integer between 0 and 65536.");
  }

  /** {@code host:port}, with brackets around an IPv6 literal. */
  @Override
  public String toString() {
    return (host.indexOf(':') >= 0 ? "[" + host + "]" : host) + ":" + port;
  }
}
