package org.rdzv.api.events;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import org.rdzv.api.internal.Json;

/**
 * PyTorch's {@code RdzvEvent}: a step of a rendezvous on one node, as the dynamic rendezvous
 * records them ({@code dynamic_rendezvous.py:DynamicRendezvousHandler.next_rendezvous}, {@code
 * dynamic_rendezvous.py:_DistributedRendezvousOpExecutor._add_to_participants}, ...).
 *
 * @param name {@code <PyTorch file>:<class>.<method>} of the step PyTorch records it in
 * @param runId the rendezvous run id
 * @param message what happened, in PyTorch's words
 * @param hostname the node's address (or this host's FQDN)
 * @param pid the node's process id
 * @param nodeState the node's state
 * @param masterEndpoint the store endpoint if known; PyTorch leaves it empty
 * @param rank the node's rank if known, else {@code null}
 * @param localId the node's local id if it has one, else {@code null}
 * @param errorTrace for a {@link NodeState#FAILED} event the error's stack trace, else empty
 */
public record RdzvEvent(
    String name,
    String runId,
    String message,
    String hostname,
    long pid,
    NodeState nodeState,
    String masterEndpoint,
    Integer rank,
    Long localId,
    String errorTrace)
    implements ElasticEvent {

  public RdzvEvent {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(nodeState, "nodeState");
    runId = runId == null ? "" : runId;
    message = message == null ? "" : message;
    hostname = hostname == null ? "" : hostname;
    masterEndpoint = masterEndpoint == null ? "" : masterEndpoint;
    errorTrace = errorTrace == null ? "" : errorTrace;
  }

  @Override
  public String serialize() {
    Map<String, Object> fields = new LinkedHashMap<>();
    fields.put("name", name);
    fields.put("run_id", runId);
    fields.put("message", message);
    fields.put("hostname", hostname);
    fields.put("pid", pid);
    fields.put("node_state", nodeState);
    fields.put("master_endpoint", masterEndpoint);
    fields.put("rank", rank);
    fields.put("local_id", localId);
    fields.put("error_trace", errorTrace);
    return Json.write(fields);
  }

  /**
   * The text an {@code error_trace} holds for {@code error}: the exception, its frames and its
   * causes, laid out as the JVM prints a stack trace (PyTorch puts Python's traceback there). Empty
   * for {@code null}.
   */
  public static String trace(Throwable error) {
    StringBuilder out = new StringBuilder();
    var seen = Collections.newSetFromMap(new IdentityHashMap<Throwable, Boolean>());
    String prefix = "";
    for (Throwable t = error; t != null && seen.add(t); t = t.getCause()) {
      out.append(prefix).append(t).append('\n');
      for (StackTraceElement frame : t.getStackTrace()) {
        out.append("\tat ").append(frame).append('\n');
      }
      prefix = "Caused by: ";
    }
    return out.toString();
  }
}
