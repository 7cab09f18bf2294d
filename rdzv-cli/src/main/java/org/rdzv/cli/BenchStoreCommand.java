package org.rdzv.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code rdzv store}: Store throughput, latency and connection storm, against PyTorch's server. */
@Command(name = "store", mixinStandardHelpOptions = true, description = "Store throughput, latency and connection storm, against PyTorch's server.")
public final class BenchStoreCommand implements Callable<Integer> {

  @Override
  public Integer call() {
    throw new UnsupportedOperationException("rdzv store is not implemented yet (issue 3).");
  }
}
