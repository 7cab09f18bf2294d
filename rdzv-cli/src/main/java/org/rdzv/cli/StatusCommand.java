package org.rdzv.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code rdzv status}: Show a rendezvous without joining or changing it. */
@Command(name = "status", mixinStandardHelpOptions = true, description = "Show a rendezvous without joining or changing it.")
public final class StatusCommand implements Callable<Integer> {

  @Mixin RendezvousOptions rendezvous;

  @Override
  public Integer call() {
    rendezvous.toParameters("c10d", "none");
    throw new UnsupportedOperationException("rdzv status is not implemented yet (issue 4).");
  }
}
