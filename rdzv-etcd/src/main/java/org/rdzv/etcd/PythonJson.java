package org.rdzv.etcd;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.util.Map;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.internal.Json;

/**
 * JSON as Python's {@code json.dumps} writes it by default ({@code ", "} and {@code ": "}
 * separators, non-ASCII escaped, keys in insertion order), so states the legacy handler writes are
 * the same text a PyTorch node would write.
 */
final class PythonJson {
  private static final ObjectMapper MAPPER = new ObjectMapper();

  private PythonJson() {}

  static ObjectNode parseObject(String text) {
    JsonNode node;
    try {
      node = MAPPER.readTree(text == null ? "" : text);
    } catch (IOException e) {
      throw new RendezvousStateException("The etcd rendezvous state is not JSON: " + text, e);
    }
    if (!(node instanceof ObjectNode object)) {
      throw new RendezvousStateException("The etcd rendezvous state is not a JSON object: " + text);
    }
    return object;
  }

  static ObjectNode object() {
    return MAPPER.createObjectNode();
  }

  static String dumps(JsonNode node) {
    StringBuilder out = new StringBuilder();
    write(node, out);
    return out.toString();
  }

  private static void write(JsonNode node, StringBuilder out) {
    switch (node.getNodeType()) {
      case OBJECT -> {
        out.append('{');
        boolean first = true;
        for (Map.Entry<String, JsonNode> e : node.properties()) {
          if (!first) {
            out.append(", ");
          }
          first = false;
          Json.quote(e.getKey(), out);
          out.append(": ");
          write(e.getValue(), out);
        }
        out.append('}');
      }
      case ARRAY -> {
        out.append('[');
        for (int i = 0; i < node.size(); i++) {
          if (i > 0) {
            out.append(", ");
          }
          write(node.get(i), out);
        }
        out.append(']');
      }
      case STRING -> Json.quote(node.textValue(), out);
      case NUMBER ->
          out.append(
              node.isIntegralNumber()
                  ? node.bigIntegerValue().toString()
                  : python(node.doubleValue()));
      case BOOLEAN -> out.append(node.booleanValue() ? "true" : "false");
      default -> out.append("null");
    }
  }

  private static String python(double d) {
    if (Double.isNaN(d)) {
      return "NaN";
    }
    if (Double.isInfinite(d)) {
      return d > 0 ? "Infinity" : "-Infinity";
    }
    return Double.toString(d);
  }
}
