package org.rdzv.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code rdzv launch}: Time a standalone launch, against torchrun. */
@Command(name = "launch", mixinStandardHelpOptions = true, description = "Time a standalone launch, against torchrun.")
public final class BenchLaunchCommand implements Callable<Integer> {

  @Override
  public Integer call() {
    throw new UnsupportedOperationException("rdzv launch is not implemented yet (issue 6).");
  }
}
