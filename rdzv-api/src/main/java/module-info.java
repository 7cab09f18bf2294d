/**
 * The rendezvous API: {@link org.rdzv.api.RendezvousHandler}, its parameters and registry, the
 * {@link org.rdzv.api.Store} interface, the plug-in SPI ({@code org.rdzv.api.spi}), and PyTorch's
 * torchelastic events ({@code org.rdzv.api.events}).
 */
@SuppressWarnings("module") // the rdzv modules named below need not be present when this compiles
module org.rdzv.api {
  exports org.rdzv.api;
  exports org.rdzv.api.spi;
  exports org.rdzv.api.events;
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
