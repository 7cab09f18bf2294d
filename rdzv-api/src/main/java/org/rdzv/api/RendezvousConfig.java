package org.rdzv.api;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** Parsing of PyTorch's configuration strings and host names. */
public final class RendezvousConfig {
  private RendezvousConfig() {}

  /**
   * Parses a {@code --rdzv-conf} string, {@code k1=v1,k2=v2}, as PyTorch's {@code
   * _parse_rendezvous_config}: items split on {@code ,}, each at its first {@code =}; keys and
   * values trimmed; later duplicates win; no escaping, so a value may contain {@code =} but not
   * {@code ,}. An empty string gives an empty map.
   *
   * @throws IllegalArgumentException for an empty key or a missing value, with PyTorch's message
   */
  public static Map<String, String> parse(String config) {
    Map<String, String> result = new LinkedHashMap<>();
    String text = config == null ? "" : config.strip();
    if (text.isEmpty()) {
      return result;
    }
    for (String item : text.split(",", -1)) {
      int eq = item.indexOf('=');
      String key = (eq < 0 ? item : item.substring(0, eq)).strip();
      if (key.isEmpty()) {
        throw new IllegalArgumentException(
            "The rendezvous configuration string must be in format"
                + " <key1>=<value1>,...,<keyN>=<valueN>.");
      }
      String value = eq < 0 ? "" : item.substring(eq + 1).strip();
      if (value.isEmpty()) {
        throw new IllegalArgumentException(
            "The rendezvous configuration option '" + key + "' must have a value specified.");
      }
      result.put(key, value);
    }
    return Collections.unmodifiableMap(result);
  }

  /**
   * Whether {@code host} names this machine, as PyTorch's {@code _matches_machine_hostname}: {@code
   * localhost}, a loopback literal, this host's name, its canonical name, or one of its addresses.
   * Used to infer {@code is_host}.
   */
  public static boolean matchesMachineHostname(String host) {
    if ("localhost".equals(host)) {
      return true;
    }
    InetAddress literal = ipLiteral(host);
    if (literal != null && literal.isLoopbackAddress()) {
      return true;
    }
    String thisHost;
    try {
      thisHost = InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      return false;
    }
    if (host.equals(thisHost)) {
      return true;
    }
    try {
      for (InetAddress address : InetAddress.getAllByName(thisHost)) {
        if (host.equals(address.getCanonicalHostName())) {
          return true;
        }
        if (literal != null && literal.equals(address)) {
          return true;
        }
      }
    } catch (UnknownHostException e) {
      return false;
    }
    return false;
  }

  /** The address if {@code host} is an IPv4 or IPv6 literal, else {@code null}; never resolves. */
  static InetAddress ipLiteral(String host) {
    if (host == null || host.isEmpty()) {
      return null;
    }
    boolean v4 = host.matches("[0-9]{1,3}(\\.[0-9]{1,3}){3}");
    boolean v6 = host.indexOf(':') >= 0 && host.matches("[0-9A-Fa-f:.]+");
    if (!v4 && !v6) {
      return null;
    }
    if (v4) {
      for (String part : host.split("\\.")) {
        if (Integer.parseInt(part) > 255 || (part.length() > 1 && part.startsWith("0"))) {
          return null;
        }
      }
    }
    try {
      return InetAddress.getByName(host);
    } catch (UnknownHostException e) {
      return null;
    }
  }
}
