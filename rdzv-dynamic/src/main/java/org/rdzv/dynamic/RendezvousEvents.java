package org.rdzv.dynamic;

import org.rdzv.api.RendezvousClosedException;
import org.rdzv.api.RendezvousConnectionException;
import org.rdzv.api.RendezvousException;
import org.rdzv.api.RendezvousGracefulExitException;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.api.RendezvousTimeoutException;
import org.rdzv.api.events.Events;
import org.rdzv.api.events.NodeState;
import org.rdzv.api.events.RdzvEvent;

/**
 * The {@link RdzvEvent}s of one node's dynamic rendezvous, named and worded as PyTorch's {@code
 * dynamic_rendezvous.py} records them ({@code <file>:<class>.<method>}), so that one event log
 * reads the same for Java and PyTorch nodes. Nothing is built while {@link Events#enabled()} is
 * false.
 */
final class RendezvousEvents {
  private static final String FILE = "dynamic_rendezvous.py:";
  private static final String HANDLER = FILE + "DynamicRendezvousHandler.";
  private static final String EXECUTOR = FILE + "_DistributedRendezvousOpExecutor.";
  private static final String HOLDER = FILE + "_BackendRendezvousStateHolder.";

  private final NodeDescriptor node;
  private final String runId;

  RendezvousEvents(NodeDescriptor node, String runId) {
    this.node = node;
    this.runId = runId;
  }

  /** An event of {@code DynamicRendezvousHandler.<method>}. */
  void handler(String method, String message, NodeState state, Integer rank, Throwable error) {
    if (Events.enabled()) {
      record(HANDLER + method, message, state, rank, error);
    }
  }

  /** A FAILED event of {@code DynamicRendezvousHandler.<method>} with PyTorch's message. */
  void handlerFailed(String method, Throwable error) {
    if (Events.enabled()) {
      record(HANDLER + method, describe(error), NodeState.FAILED, null, error);
    }
  }

  /** An event of {@code _DistributedRendezvousOpExecutor.<method>}. */
  void executor(String method, String message, NodeState state) {
    if (Events.enabled()) {
      record(EXECUTOR + method, message, state, null, null);
    }
  }

  /** An event of {@code _BackendRendezvousStateHolder.sync}, which PyTorch records per process. */
  void holder(String message) {
    if (Events.enabled()) {
      Events.record(
          new RdzvEvent(
              HOLDER + "sync",
              runId,
              message,
              RendezvousStoreInfo.fqdn(),
              ProcessHandle.current().pid(),
              NodeState.RUNNING,
              "",
              null,
              null,
              ""));
    }
  }

  /**
   * An event of a PyTorch function outside a class (such as {@code
   * c10d_rendezvous_backend.py:_create_tcp_store}), recorded for this process.
   */
  static void function(
      String file, String function, String runId, String message, NodeState state, Throwable e) {
    if (Events.enabled()) {
      Events.record(
          new RdzvEvent(
              file + ":" + function,
              runId,
              message,
              RendezvousStoreInfo.fqdn(),
              ProcessHandle.current().pid(),
              state,
              "",
              null,
              null,
              RdzvEvent.trace(e)));
    }
  }

  /** PyTorch's {@code f"{type(e).__name__}: {str(e)}"}, with PyTorch's names for our kinds. */
  static String describe(Throwable e) {
    String message = e.getMessage();
    return pytorchName(e) + ": " + (message == null ? "" : message);
  }

  /** The name of the PyTorch exception that {@code e} stands for, else its Java name. */
  static String pytorchName(Throwable e) {
    return switch (e) {
      case RendezvousTimeoutException t -> "RendezvousTimeoutError";
      case RendezvousClosedException c -> "RendezvousClosedError";
      case RendezvousGracefulExitException g -> "RendezvousGracefulExitError";
      case RendezvousConnectionException c -> "RendezvousConnectionError";
      case RendezvousStateException s -> "RendezvousStateError";
      case RendezvousException r -> "RendezvousError";
      case IllegalArgumentException i -> "ValueError";
      default -> e.getClass().getSimpleName();
    };
  }

  private void record(String name, String message, NodeState state, Integer rank, Throwable error) {
    Events.record(
        new RdzvEvent(
            name,
            runId,
            message,
            node.host(),
            node.pid(),
            state,
            "",
            rank,
            node.localId(),
            state == NodeState.FAILED ? RdzvEvent.trace(error) : ""));
  }
}
