package org.rdzv.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code rdzv run}: Launch workers under an elastic agent (torchrun-compatible). */
@Command(name = "run", mixinStandardHelpOptions = true, description = "Launch workers under an elastic agent (torchrun-compatible).")
public final class RunCommand implements Callable<Integer> {

  @Mixin RendezvousOptions rendezvous;

  @Override
  public Integer call() {
    rendezvous.toParameters("static", "none");
    throw new UnsupportedOperationException("rdzv run is not implemented yet (issue 6).");
  }
}
