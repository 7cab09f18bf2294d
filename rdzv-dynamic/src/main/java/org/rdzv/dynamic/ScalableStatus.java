package org.rdzv.dynamic;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousStatus;
import org.rdzv.api.internal.Json;
import org.rdzv.dynamic.spi.RendezvousBackendProvider;
import org.rdzv.dynamic.spi.ScalableStore;

/**
 * A run of the scalable protocol as {@code rdzv status} shows it: {@code run_id=<id>
 * protocol=scalable round=R complete=... closed=... joined=J participants=W waiting=N redundant=N
 * gone=N}, read with O(1) store operations (no per-node lines: that would be O(N)).
 */
public final class ScalableStatus implements RendezvousStatus {
  private final String runId;
  private final Map<String, Object> fields;

  private ScalableStatus(String runId, Map<String, Object> fields) {
    this.runId = runId;
    this.fields = fields;
  }

  /** Whether {@code state} (a backend's pickled state) is the fence of a scalable run id. */
  public static boolean isFence(byte[] state) {
    return ScalableHandler.isFence(state);
  }

  /**
   * Reads the scalable run of {@code params} through {@code provider}'s read-only scalable store.
   *
   * @throws IllegalArgumentException if the provider has no scalable protocol
   */
  public static Optional<RendezvousStatus> read(
      RendezvousBackendProvider provider, RendezvousParameters params) {
    try (ScalableStore store =
        provider.createScalableStore(params, RendezvousSettings.from(params), true)) {
      long round = store.add(ScalableHandler.ROUND, 0);
      ScalableStore.Tally joined = store.tally(ScalableHandler.key(round, "joined"));
      byte[] size = store.get(ScalableHandler.key(round, "size"));
      Map<String, Object> f = new LinkedHashMap<>();
      f.put("protocol", "scalable");
      f.put("round", round);
      f.put("complete", size != null);
      f.put("closed", store.get(ScalableHandler.CLOSED) != null);
      f.put("joined", joined.entries());
      f.put(
          "participants",
          size == null ? 0 : Long.parseLong(new String(size, StandardCharsets.UTF_8)));
      f.put("waiting", store.add(ScalableHandler.key(round, "waiting"), 0));
      f.put("redundant", store.add(ScalableHandler.key(round, "redundant"), 0));
      f.put("gone", store.add(ScalableHandler.key(round, "exited"), 0));
      return Optional.of(new ScalableStatus(params.runId(), f));
    }
  }

  @Override
  public String runId() {
    return runId;
  }

  @Override
  public List<String> lines(Instant now) {
    StringBuilder head = new StringBuilder("run_id=").append(runId);
    fields.forEach((k, v) -> head.append(' ').append(k).append('=').append(v));
    return List.of(head.toString());
  }

  @Override
  public String toJson(Instant now) {
    StringBuilder out = new StringBuilder("{\"run_id\": ");
    Json.quote(runId, out);
    fields.forEach(
        (k, v) -> {
          out.append(", ");
          Json.quote(k, out);
          out.append(": ");
          Json.write(v, out);
        });
    return out.append('}').toString();
  }
}
