package org.rdzv.launcher;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;

/**
 * How an agent's run ended: PyTorch's {@code RunResult}.
 *
 * @param state {@link WorkerState#SUCCEEDED} or {@link WorkerState#FAILED}
 * @param failures the failed workers of the last attempt by global rank, in the order they were
 *     seen; empty on success
 * @param restarts how many restarts the failures used ({@code TORCHELASTIC_RESTART_COUNT} of the
 *     last attempt)
 * @param rounds how many rendezvous rounds this agent joined (restarts plus membership changes plus
 *     one)
 */
public record RunResult(
    WorkerState state, Map<Integer, ProcessFailure> failures, int restarts, int rounds) {
  public RunResult {
    Objects.requireNonNull(state, "state");
    failures = Collections.unmodifiableMap(new LinkedHashMap<>(failures));
  }

  /** Whether every worker of the last attempt exited 0. */
  public boolean isSuccess() {
    return state == WorkerState.SUCCEEDED;
  }

  /** The failure with the earliest timestamp (PyTorch's "root cause"), or {@code null}. */
  public ProcessFailure rootCause() {
    ProcessFailure first = null;
    for (ProcessFailure f : failures.values()) {
      if (first == null || f.timestamp().isBefore(first.timestamp())) {
        first = f;
      }
    }
    return first;
  }
}
