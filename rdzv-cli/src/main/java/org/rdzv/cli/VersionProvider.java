package org.rdzv.cli;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import picocli.CommandLine.IVersionProvider;

/** Reads the version and git commit Maven wrote into {@code version.properties}. */
final class VersionProvider implements IVersionProvider {
  private static Properties properties() {
    Properties properties = new Properties();
    try (InputStream in = VersionProvider.class.getResourceAsStream("version.properties")) {
      if (in != null) {
        properties.load(in);
      }
    } catch (IOException e) {
      // fall through to "unknown"
    }
    return properties;
  }

  static String version() {
    return properties().getProperty("version", "unknown");
  }

  /** The commit the build came from, or empty when it was not built from a git checkout. */
  static String commit() {
    String commit = properties().getProperty("commit", "").strip();
    // Maven leaves the expression in place when the build found no commit.
    return commit.startsWith("${") ? "" : commit;
  }

  @Override
  public String[] getVersion() {
    String commit = commit();
    return new String[] {
      "rdzv "
          + version()
          + " ("
          + (commit.isEmpty() ? "" : "commit " + commit + ", ")
          + "Java "
          + Runtime.version()
          + ", PyTorch rendezvous 1.13 and 2.x)"
    };
  }
}
