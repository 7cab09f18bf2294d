/** The TCPStore server and client, wire-compatible with PyTorch 1.13 and 2.x. */
module org.rdzv.store {
  requires transitive org.rdzv.api;
  // TcpStoreServerOptions takes the MeterRegistry the server records into.
  requires transitive micrometer.core;
  // LastWords: the one line a dying server writes without new resources.
  requires java.logging;
  // MicrometerLogging: Micrometer's own log lines to the JDK's logging where SLF4J has no provider.
  requires micrometer.commons;

  exports org.rdzv.store;
}
