package org.rdzv.launcher;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.rdzv.api.RendezvousHandler;
import org.rdzv.api.RendezvousParameters;
import org.rdzv.api.RendezvousRegistry;

/**
 * Runs one node of a job the way torchrun's {@code launch_agent} does: creates the rendezvous
 * handler, runs an {@link ElasticAgent}, closes the rendezvous when the job ends, and hands the
 * root cause of a failure to an outer scheduler through {@code TORCHELASTIC_ERROR_FILE}.
 *
 * <p>While it runs, a JVM shutdown hook turns SIGTERM and SIGINT into {@link ElasticAgent#stop()}:
 * workers get SIGTERM, then SIGKILL after the stop timeout, and nothing stays behind. As in
 * PyTorch, a stopped agent leaves the rendezvous open, so a replacement can join.
 */
public final class Launcher {
  private static final System.Logger LOG = System.getLogger(Launcher.class.getName());

  /** The {@code timeout} PyTorch's {@code LaunchConfig} puts into every rendezvous config. */
  public static final int DEFAULT_RDZV_TIMEOUT_SECONDS = 900;

  private Launcher() {}

  /**
   * Launches with a handler from {@link RendezvousRegistry#handler} for {@code
   * config.rendezvous()}.
   *
   * @throws IllegalArgumentException if the backend is unknown or its parameters are invalid
   * @throws org.rdzv.api.RendezvousException if the rendezvous fails
   */
  public static RunResult launch(LaunchConfig config, Consumer<AgentEvent> listener) {
    RendezvousParameters parameters = withDefaults(config.rendezvous());
    RendezvousHandler handler = RendezvousRegistry.handler(parameters);
    try {
      return launch(config.toBuilder().rendezvous(parameters).build(), handler, listener);
    } finally {
      // Our handler: release what it owns (a hosted rendezvous store, heartbeats).
      handler.close();
    }
  }

  /**
   * PyTorch's rendezvous defaults: a random decimal run id in place of an empty one, and {@code
   * timeout=900} unless the config has a {@code timeout}.
   */
  public static RendezvousParameters withDefaults(RendezvousParameters parameters) {
    RendezvousParameters p = parameters;
    if (p.runId().isEmpty()) {
      UUID uuid = UUID.randomUUID();
      byte[] bytes =
          java.nio.ByteBuffer.allocate(16)
              .putLong(uuid.getMostSignificantBits())
              .putLong(uuid.getLeastSignificantBits())
              .array();
      String decimal = new BigInteger(1, bytes).toString(); // Python's str(uuid.uuid4().int)
      p =
          new RendezvousParameters(
              p.backend(),
              p.endpoint(),
              decimal,
              p.minNodes(),
              p.maxNodes(),
              p.localAddr(),
              p.config());
    }
    if (!p.config().containsKey("timeout")) {
      p = p.with("timeout", Integer.toString(DEFAULT_RDZV_TIMEOUT_SECONDS));
    }
    return p;
  }

  /**
   * Runs an agent on {@code handler} until the job ends on this node. Shuts the handler down
   * (closing the rendezvous) after success or failure, not after a signal.
   *
   * @param listener receives the agent's events; may be {@code null}
   */
  public static RunResult launch(
      LaunchConfig config, RendezvousHandler handler, Consumer<AgentEvent> listener) {
    ElasticAgent agent = ElasticAgent.create(config, handler, listener);
    CountDownLatch finished = new CountDownLatch(1);
    Thread hook =
        new Thread(
            () -> {
              if (finished.getCount() == 0) {
                return;
              }
              LOG.log(Level.WARNING, "Received a termination signal, shutting down workers");
              agent.stop();
              try {
                finished.await(
                    config.stopTimeout().plusSeconds(10).toMillis(), TimeUnit.MILLISECONDS);
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            },
            "rdzv-agent-shutdown");
    Runtime.getRuntime().addShutdownHook(hook);
    RunResult result;
    try {
      result = agent.run();
    } catch (RuntimeException e) {
      // As torchrun: close the rendezvous after an agent error too (not after a signal).
      shutdownQuietly(handler, e);
      throw e;
    } finally {
      finished.countDown();
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // the JVM is shutting down (a signal); the hook is running
      }
    }
    if (result.state() != WorkerState.STOPPED) {
      handler.shutdown();
    }
    if (!result.isSuccess() && result.rootCause() != null) {
      propagateRootCause(result.rootCause(), System.getenv("TORCHELASTIC_ERROR_FILE"));
    }
    return result;
  }

  private static void shutdownQuietly(RendezvousHandler handler, RuntimeException cause) {
    try {
      handler.shutdown();
    } catch (RuntimeException e) {
      cause.addSuppressed(e);
    }
  }

  /**
   * Copies the root-cause worker's error file to {@code target} with {@code errorCode} added, as
   * torchrun does for an outer scheduler. Does nothing when either is missing.
   */
  static void propagateRootCause(ProcessFailure root, String target) {
    if (target == null || target.isBlank() || root.errorFileContents() == null) {
      return;
    }
    try {
      Object data = Json.parse(root.errorFileContents());
      if (data instanceof Map<?, ?> map && map.get("message") instanceof Map<?, ?> message) {
        @SuppressWarnings("unchecked")
        Map<String, Object> m = (Map<String, Object>) message;
        m.put("errorCode", root.exitCode());
      }
      Path path = Path.of(target);
      if (path.getParent() != null) {
        Files.createDirectories(path.getParent());
      }
      Files.writeString(path, Json.write(data), StandardCharsets.UTF_8);
    } catch (IOException | IllegalArgumentException e) {
      LOG.log(Level.WARNING, "cannot write the error file {0}: {1}", target, e.toString());
    }
  }
}
