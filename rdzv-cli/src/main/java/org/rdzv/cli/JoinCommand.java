package org.rdzv.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

/** {@code rdzv join}: Join one rendezvous round and print this node's rank. */
@Command(name = "join", mixinStandardHelpOptions = true, description = "Join one rendezvous round and print this node's rank.")
public final class JoinCommand implements Callable<Integer> {

  @Mixin RendezvousOptions rendezvous;

  @Override
  public Integer call() {
    rendezvous.toParameters("c10d", "none");
    throw new UnsupportedOperationException("rdzv join is not implemented yet (issue 4).");
  }
}
