package org.rdzv.launcher;

import java.util.Map;
import java.util.function.Consumer;
import org.rdzv.api.RendezvousHandler;

/**
 * One node's elastic agent: PyTorch's {@code LocalElasticAgent}. It joins a rendezvous with the
 * other agents, starts its local workers with PyTorch's environment contract, watches them, and
 * restarts the whole group (re-rendezvousing across nodes) when a worker fails — up to {@code
 * maxRestarts} times — or when nodes wait to join.
 *
 * <p>Create one per job with {@link #create}; {@link #run()} may be called once. {@link #stop()}
 * may be called from any thread (a signal handler, typically).
 */
public interface ElasticAgent {

  /**
   * An agent that will run {@code config}'s workers in the rendezvous of {@code handler}. The agent
   * does not shut the handler down; {@link Launcher#launch} does.
   *
   * @param listener receives {@link AgentEvent}s; may be {@code null}
   */
  static ElasticAgent create(
      LaunchConfig config, RendezvousHandler handler, Consumer<AgentEvent> listener) {
    return new LocalElasticAgent(config, handler, listener);
  }

  /**
   * Runs the job on this node until its workers succeed, fail with no restarts left, or {@link
   * #stop()} is called. Blocks; workers exits are seen as they happen. Every worker process (and
   * what it started) is gone when this returns or throws.
   *
   * @return {@link WorkerState#SUCCEEDED}, {@link WorkerState#FAILED}, or {@link
   *     WorkerState#STOPPED} after {@link #stop()}
   * @throws org.rdzv.api.RendezvousException if a rendezvous fails (timeout, closed, lost backend)
   * @throws java.io.UncheckedIOException if a worker program cannot be started
   * @throws IllegalStateException if called twice
   */
  RunResult run();

  /**
   * Stops the agent: its workers get SIGTERM, then SIGKILL after the stop timeout, and {@link
   * #run()} returns {@link WorkerState#STOPPED}. Blocks until the workers are gone. Idempotent;
   * does not close the rendezvous, so a replacement agent can join the job.
   */
  void stop();

  /** The pids of the current workers by local rank; empty when none run. */
  Map<Integer, Long> workerPids();
}
