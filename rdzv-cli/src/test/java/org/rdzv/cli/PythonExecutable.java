package org.rdzv.cli;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.rdzv.testing.Torch;

/** One executable that starts a {@link Torch}'s interpreter, for {@code rdzv run --python}. */
final class PythonExecutable {
  private PythonExecutable() {}

  /** The interpreter itself where it is one file, else a wrapper script in {@code dir}. */
  static String of(Torch torch, Path dir) {
    List<String> command = torch.python();
    if (command.size() == 1) {
      return command.get(0);
    }
    try {
      Path wrapper = dir.resolve("python-" + torch.version());
      Files.writeString(wrapper, "#!/bin/sh\nexec '" + String.join("' '", command) + "' \"$@\"\n");
      Files.setPosixFilePermissions(wrapper, PosixFilePermissions.fromString("rwxr-xr-x"));
      return wrapper.toString();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
