package org.rdzv.api.events;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import org.rdzv.api.internal.Json;

/**
 * PyTorch's {@code Event}: something that happened to an agent or a worker during a job, such as
 * {@code torchelastic.worker.status.SUCCEEDED}.
 *
 * @param name the event name
 * @param source who produced it
 * @param timestamp when it happened, in milliseconds since the epoch (PyTorch leaves it 0; rdzv
 *     fills it in)
 * @param metadata values that are {@code null}, {@link String}, {@link Boolean}, {@link Integer},
 *     {@link Long} or {@link Double} (PyTorch's {@code EventMetadataValue}); iteration order is
 *     kept and written
 */
public record Event(String name, EventSource source, long timestamp, Map<String, Object> metadata)
    implements ElasticEvent {

  public Event {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(source, "source");
    LinkedHashMap<String, Object> copy = new LinkedHashMap<>();
    if (metadata != null) {
      metadata.forEach(
          (k, v) -> {
            if (!(v == null
                || v instanceof String
                || v instanceof Boolean
                || v instanceof Integer
                || v instanceof Long
                || v instanceof Double)) {
              throw new IllegalArgumentException(
                  "event metadata '"
                      + k
                      + "' is a "
                      + v.getClass().getSimpleName()
                      + "; use a string, a boolean, an integer, a double or null");
            }
            copy.put(Objects.requireNonNull(k, "metadata key"), v);
          });
    }
    metadata = Collections.unmodifiableMap(copy);
  }

  @Override
  public String serialize() {
    Map<String, Object> fields = new LinkedHashMap<>();
    fields.put("name", name);
    fields.put("source", source);
    fields.put("timestamp", timestamp);
    fields.put("metadata", metadata);
    return Json.write(fields);
  }
}
