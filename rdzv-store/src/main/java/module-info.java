/** The TCPStore server and client, wire-compatible with PyTorch 1.13 and 2.x. */
module org.rdzv.store {
  requires transitive org.rdzv.api;
  // TcpStoreServerOptions takes the MeterRegistry the server records into.
  requires transitive micrometer.core;
  // MicrometerLogging points Micrometer's own logging at the JDK's; LastWords warms that up.
  requires micrometer.commons;
  requires java.logging;

  exports org.rdzv.store;
}
