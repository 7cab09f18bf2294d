/** The TCPStore server and client, wire-compatible with PyTorch 1.13 and 2.x. */
module org.rdzv.store {
  requires transitive org.rdzv.api;

  exports org.rdzv.store;
}
