package org.rdzv.launcher;

import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import org.rdzv.api.RendezvousStateException;

/**
 * What each agent tells the others about its workers: PyTorch's {@code _RoleInstanceInfo}.
 *
 * @param agentStore whether this agent may host the workers' store (an rdzv agent's capability;
 *     torchrun agents do not write it, which reads as {@code false})
 */
record RoleInfo(String role, int rank, int localWorldSize, boolean agentStore) {

  /** Extra field by which rdzv agents tell each other they can use an agent store. */
  static final String AGENT_STORE_FIELD = "agent_store";

  /** PyTorch's JSON, byte for byte, plus our capability flag when it is set. */
  byte[] encode() {
    Map<String, Object> map = pytorchFields();
    if (agentStore) {
      map.put(AGENT_STORE_FIELD, true);
    }
    return Json.write(map).getBytes(StandardCharsets.UTF_8);
  }

  private Map<String, Object> pytorchFields() {
    Map<String, Object> map = new LinkedHashMap<>();
    map.put("role", role);
    map.put("rank", rank);
    map.put("local_world_size", localWorldSize);
    return map;
  }

  /**
   * PyTorch's JSON with our capability flag always present, {@code true} or {@code false}: the
   * field's presence is what tells an rdzv agent's role info from a torchrun agent's (which PyTorch
   * ignores: it reads the three fields it knows).
   */
  byte[] encodeMarked() {
    Map<String, Object> map = pytorchFields();
    map.put(AGENT_STORE_FIELD, agentStore);
    return Json.write(map).getBytes(StandardCharsets.UTF_8);
  }

  /** Whether {@code data} is a role info written by an rdzv agent with {@link #encodeMarked()}. */
  static boolean isMarked(byte[] data) {
    try {
      return Json.parse(new String(data, StandardCharsets.UTF_8)) instanceof Map<?, ?> map
          && map.containsKey(AGENT_STORE_FIELD);
    } catch (IllegalArgumentException e) {
      return false;
    }
  }

  /**
   * Reads a role info as PyTorch writes it (ours may carry the capability flag).
   *
   * @throws RendezvousStateException naming the agent when the bytes are not a role info
   */
  static RoleInfo decode(byte[] data, int expectedRank) {
    String text = new String(data, StandardCharsets.UTF_8);
    try {
      if (Json.parse(text) instanceof Map<?, ?> map
          && map.get("role") instanceof String role
          && map.get("rank") instanceof Long rank
          && map.get("local_world_size") instanceof Long n) {
        return new RoleInfo(
            role, rank.intValue(), n.intValue(), Boolean.TRUE.equals(map.get(AGENT_STORE_FIELD)));
      }
    } catch (IllegalArgumentException e) {
      // reported below
    }
    throw new RendezvousStateException(
        "the role info of agent " + expectedRank + " is not what an elastic agent writes: " + text);
  }
}
