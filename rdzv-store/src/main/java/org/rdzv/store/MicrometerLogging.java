package org.rdzv.store;

import io.micrometer.common.util.internal.logging.InternalLoggerFactory;
import io.micrometer.common.util.internal.logging.JdkLoggerFactory;
import java.util.ServiceLoader;

/**
 * Micrometer logs through SLF4J when its API is on the class path (jetcd brings it), and SLF4J
 * without a provider prints three warning lines on the first use, in every process that starts a
 * store. Where no SLF4J provider is bound, Micrometer's few log lines go to the JDK's logging, like
 * rdzv's own; where one is bound, nothing changes.
 */
final class MicrometerLogging {
  private MicrometerLogging() {}

  private static final boolean DONE = configure();

  /** Idempotent; call before Micrometer's classes are first used. */
  static boolean ensure() {
    return DONE;
  }

  private static boolean configure() {
    try {
      Class<?> provider = Class.forName("org.slf4j.spi.SLF4JServiceProvider");
      ClassLoader loader = MicrometerLogging.class.getClassLoader();
      if (ServiceLoader.load(provider, loader).findFirst().isPresent()) {
        return false;
      }
    } catch (ClassNotFoundException | LinkageError | java.util.ServiceConfigurationError e) {
      // No SLF4J 2 here: Micrometer picks the JDK's logging itself, or an SLF4J 1 binding.
      return false;
    }
    InternalLoggerFactory.setDefaultFactory(JdkLoggerFactory.INSTANCE);
    return true;
  }
}
