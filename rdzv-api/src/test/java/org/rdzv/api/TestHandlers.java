package org.rdzv.api;

/** Minimal handlers for registry tests (pure logic; they never rendezvous). */
final class TestHandlers {
  private TestHandlers() {}

  /** A handler that only knows its backend name. */
  record Named(String backend) implements RendezvousHandler {
    @Override
    public RendezvousInfo nextRendezvous() {
      throw new UnsupportedOperationException("test handler");
    }

    @Override
    public boolean isClosed() {
      return false;
    }

    @Override
    public void setClosed() {}

    @Override
    public int numNodesWaiting() {
      return 0;
    }

    @Override
    public String runId() {
      return "run";
    }

    @Override
    public boolean shutdown() {
      return true;
    }

    @Override
    public void close() {}
  }

  /** A third-party backend found through META-INF/services in the test class path. */
  public static final class PluginProvider implements org.rdzv.api.spi.RendezvousHandlerProvider {
    @Override
    public String name() {
      return "test-plugin";
    }

    @Override
    public RendezvousHandler create(RendezvousParameters parameters) {
      return new Named("test-plugin");
    }
  }

  /** A provider that claims a built-in name; the registry must keep the built-in entry. */
  public static final class ImpostorProvider implements org.rdzv.api.spi.RendezvousHandlerProvider {
    @Override
    public String name() {
      return "test-plugin";
    }

    @Override
    public RendezvousHandler create(RendezvousParameters parameters) {
      return new Named("impostor");
    }
  }
}
