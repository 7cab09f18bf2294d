package org.rdzv.cli;

import java.util.logging.Level;
import java.util.logging.Logger;
import picocli.CommandLine.Model.CommandSpec;

/**
 * Keeps the rendezvous layer's INFO logging off stderr unless {@code --verbose} is given or {@code
 * LOGLEVEL} sets the level.
 */
final class Quiet {
  /** Held strongly: java.util.logging keeps loggers only weakly. */
  private static final Logger RDZV = Logger.getLogger("org.rdzv");

  private Quiet() {}

  static void unlessVerbose(CommandSpec spec) {
    if (Logging.levelFromEnvironment(System.getenv())) {
      return; // LOGLEVEL decides, as for torchrun
    }
    Object root = spec.root().userObject();
    if (!(root instanceof RdzvCommand r) || !r.verbose) {
      RDZV.setLevel(Level.WARNING);
    }
  }
}
