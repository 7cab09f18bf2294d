package org.rdzv.etcd;

import java.util.Set;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.dynamic.DynamicRendezvousHandler;
import org.rdzv.dynamic.NodeDescriptor;
import org.rdzv.dynamic.StateSnapshot;

/** A dynamic handler that also releases an etcd client when it is closed. */
final class OwningHandler implements DynamicRendezvousHandler {
  private final DynamicRendezvousHandler delegate;
  private final Runnable release;
  private final java.util.concurrent.atomic.AtomicBoolean closed =
      new java.util.concurrent.atomic.AtomicBoolean();

  OwningHandler(DynamicRendezvousHandler delegate, Runnable release) {
    this.delegate = delegate;
    this.release = release;
  }

  @Override
  public String backend() {
    return delegate.backend();
  }

  @Override
  public RendezvousInfo nextRendezvous() {
    return delegate.nextRendezvous();
  }

  @Override
  public boolean isClosed() {
    return delegate.isClosed();
  }

  @Override
  public void setClosed() {
    delegate.setClosed();
  }

  @Override
  public int numNodesWaiting() {
    return delegate.numNodesWaiting();
  }

  @Override
  public String runId() {
    return delegate.runId();
  }

  @Override
  public boolean useAgentStore() {
    return delegate.useAgentStore();
  }

  @Override
  public boolean shutdown() {
    return delegate.shutdown();
  }

  @Override
  public NodeDescriptor node() {
    return delegate.node();
  }

  @Override
  public StateSnapshot state() {
    return delegate.state();
  }

  @Override
  public void leave() {
    delegate.leave();
  }

  @Override
  public Set<NodeDescriptor> lostParticipants() {
    return delegate.lostParticipants();
  }

  @Override
  public void addListener(Listener listener) {
    delegate.addListener(listener);
  }

  @Override
  public void removeListener(Listener listener) {
    delegate.removeListener(listener);
  }

  @Override
  public void close() {
    try {
      delegate.close();
    } finally {
      if (closed.compareAndSet(false, true)) {
        release.run();
      }
    }
  }

  @Override
  public String toString() {
    return delegate.toString();
  }
}
