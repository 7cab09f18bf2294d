package org.rdzv.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code rdzv store}: Run a TCPStore server (PyTorch 1.13 and 2.x protocols) in the foreground. */
@Command(name = "store", mixinStandardHelpOptions = true, description = "Run a TCPStore server (PyTorch 1.13 and 2.x protocols) in the foreground.")
public final class StoreCommand implements Callable<Integer> {

  @Override
  public Integer call() {
    throw new UnsupportedOperationException("rdzv store is not implemented yet (issue 3).");
  }
}
