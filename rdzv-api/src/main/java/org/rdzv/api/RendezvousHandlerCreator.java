package org.rdzv.api;

/** Builds a handler from parameters: PyTorch's {@code RendezvousHandlerCreator}. */
@FunctionalInterface
public interface RendezvousHandlerCreator {
  RendezvousHandler create(RendezvousParameters parameters);
}
