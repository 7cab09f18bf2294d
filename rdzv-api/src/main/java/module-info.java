/**
 * The rendezvous API: {@link org.rdzv.api.RendezvousHandler}, its parameters and registry, the
 * {@link org.rdzv.api.Store} interface, and the plug-in SPI ({@code org.rdzv.api.spi}).
 */
@SuppressWarnings("module") // the rdzv modules named below need not be present when this compiles
module org.rdzv.api {
  exports org.rdzv.api;
  exports org.rdzv.api.spi;
  // Shared by rdzv's own modules; not an API.
  exports org.rdzv.api.internal to
      org.rdzv.store,
      org.rdzv.dynamic,
      org.rdzv.etcd,
      org.rdzv.etcd.v3,
      org.rdzv.launcher,
      org.rdzv.bench,
      org.rdzv.cli;

  uses org.rdzv.api.spi.RendezvousHandlerProvider;
}
