/**
 * PyTorch's dynamic rendezvous, the {@code c10d} backend and the {@code static} handler, with the
 * backend SPI ({@code org.rdzv.dynamic.spi}).
 */
module org.rdzv.dynamic {
  requires transitive org.rdzv.api;
  requires org.rdzv.store;

  exports org.rdzv.dynamic;
  exports org.rdzv.dynamic.spi;

  provides org.rdzv.api.spi.RendezvousHandlerProvider with
      org.rdzv.dynamic.C10dRendezvousProvider,
      org.rdzv.dynamic.StaticRendezvousProvider;
}
