package org.rdzv.cli;

import java.util.logging.LogManager;

/**
 * The JDK's {@link LogManager}, except that its own shutdown hook does not close the handlers: an
 * agent stopped by SIGTERM logs what it does to its workers ("Sending process … closing signal
 * SIGTERM") from another shutdown hook, and those lines used to vanish when the JDK's ran first.
 * Selected by {@link Main} through {@code java.util.logging.manager} before anything logs.
 */
public final class ShutdownLogManager extends LogManager {
  /** Instantiated by {@link LogManager} itself. */
  public ShutdownLogManager() {}

  @Override
  public void reset() {
    // The JDK's hook is a thread of class LogManager$Cleaner; every other reset is honoured.
    if (Thread.currentThread().getClass().getName().startsWith(LogManager.class.getName() + "$")) {
      return;
    }
    super.reset();
  }
}
