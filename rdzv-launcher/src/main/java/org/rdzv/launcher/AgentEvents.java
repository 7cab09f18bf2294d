package org.rdzv.launcher;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.api.events.Event;
import org.rdzv.api.events.EventSource;
import org.rdzv.api.events.Events;

/**
 * The agent's {@link Event}s as PyTorch's agent builds them ({@code _construct_event}): named
 * {@code torchelastic.worker.status.<STATE>}, with PyTorch's metadata keys in PyTorch's order and
 * its nested {@code metadata} JSON text. Nothing is built while {@link Events#enabled()} is false.
 */
final class AgentEvents {
  /** What PyTorch's agent records as a worker's error when it wrote no error file. */
  static final String NO_ERROR_DATA = "{\"message\": \"<NONE>\"}";

  /** The agent's view when an event is recorded. */
  record Snapshot(
      String runId,
      String backend,
      Integer groupRank,
      Integer groupWorldSize,
      long totalRunTimeSeconds,
      int agentRestarts) {}

  /** One worker as an event names it. */
  record WorkerInfo(int localRank, int globalRank, int roleRank, int roleWorldSize, long pid) {}

  private final String role;
  private final String entryPoint;
  private final String hostname;

  AgentEvents(LaunchConfig config) {
    this.role = config.role();
    // PyTorch's WorkerSpec.get_entrypoint_name(): the program's base name (python3 for scripts).
    Path program = Path.of(config.command().get(0)).getFileName();
    this.entryPoint = program == null ? config.command().get(0) : program.toString();
    this.hostname = RendezvousStoreInfo.fqdn();
  }

  /** An agent event ({@code RENDEZVOUS}, {@code ASSIGN_WORKER_RANKS}, {@code SUCCEEDED}, ...). */
  void agent(String state, Snapshot at, String rawError, Double durationMs) {
    if (Events.enabled()) {
      Events.record(construct(state, EventSource.AGENT, at, null, rawError, durationMs));
    }
  }

  /** A worker event: its state ({@code SUCCEEDED}, {@code FAILED}, {@code TERMINATED}). */
  void worker(String state, Snapshot at, WorkerInfo worker, String rawError) {
    if (Events.enabled()) {
      Events.record(construct(state, EventSource.WORKER, at, worker, rawError, null));
    }
  }

  Event construct(
      String state,
      EventSource source,
      Snapshot at,
      WorkerInfo worker,
      String rawError,
      Double durationMs) {
    Map<String, Object> md = new LinkedHashMap<>();
    md.put("group_world_size", at.groupWorldSize());
    md.put("entry_point", entryPoint);
    if (worker != null) {
      // PyTorch's agent writes these three as one-element tuples, hence lists.
      md.put("local_rank", List.of(worker.localRank()));
      md.put("role_rank", List.of(worker.roleRank()));
      md.put("role_world_size", List.of(worker.roleWorldSize()));
    }
    Map<String, Object> metadata = new LinkedHashMap<>();
    metadata.put("run_id", at.runId());
    metadata.put("global_rank", worker == null ? null : worker.globalRank());
    metadata.put("group_rank", at.groupRank());
    metadata.put("worker_id", worker == null ? null : Long.toString(worker.pid()));
    metadata.put("role", role);
    metadata.put("hostname", hostname);
    metadata.put("state", state);
    metadata.put("total_run_time", at.totalRunTimeSeconds());
    metadata.put("rdzv_backend", at.backend());
    metadata.put("raw_error", rawError);
    metadata.put("metadata", Json.write(md));
    metadata.put("agent_restarts", at.agentRestarts());
    metadata.put("duration_ms", durationMs);
    return new Event(
        "torchelastic.worker.status." + state, source, System.currentTimeMillis(), metadata);
  }

  /**
   * A failed worker's {@code raw_error}: its error file as JSON text in Python's layout ({@code
   * json.dumps(failure.error_file_data)}), or PyTorch's {@code {"message": "<NONE>"}}.
   */
  static String rawError(ProcessFailure failure) {
    if (failure.errorFileContents() == null) {
      return NO_ERROR_DATA;
    }
    try {
      return Json.write(Json.parse(failure.errorFileContents()));
    } catch (IllegalArgumentException e) {
      return Json.write(Map.of("message", failure.errorFileContents()));
    }
  }
}
