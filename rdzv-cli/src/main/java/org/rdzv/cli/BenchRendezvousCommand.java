package org.rdzv.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code rdzv rendezvous}: Time N nodes rendezvousing, against PyTorch. */
@Command(name = "rendezvous", mixinStandardHelpOptions = true, description = "Time N nodes rendezvousing, against PyTorch.")
public final class BenchRendezvousCommand implements Callable<Integer> {

  @Override
  public Integer call() {
    throw new UnsupportedOperationException("rdzv rendezvous is not implemented yet (issue 4).");
  }
}
