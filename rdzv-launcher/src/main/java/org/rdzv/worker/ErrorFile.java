package org.rdzv.worker;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import org.rdzv.api.internal.Json;

/**
 * A Java worker's counterpart of PyTorch's {@code @record}: an uncaught exception is written to
 * {@code TORCHELASTIC_ERROR_FILE} in PyTorch's format, so the agent's failure summary shows its
 * stack trace.
 *
 * <pre>{@code
 * public static void main(String[] args) {
 *   ErrorFile.record(() -> train(args));
 * }
 * }</pre>
 */
public final class ErrorFile {
  private ErrorFile() {}

  /**
   * Runs {@code body}; if it throws, writes the error file (when the agent set one) and rethrows,
   * so the JVM still exits non-zero.
   */
  public static void record(Runnable body) {
    try {
      body.run();
    } catch (RuntimeException | Error e) {
      String file = System.getenv("TORCHELASTIC_ERROR_FILE");
      if (file != null && !file.isBlank()) {
        try {
          write(Path.of(file), e, Instant.now());
        } catch (UncheckedIOException io) {
          e.addSuppressed(io);
        }
      }
      throw e;
    }
  }

  /**
   * Writes {@code error} to {@code file} as PyTorch's error handler does: {@code {"message":
   * {"message": "<Type>: <message>", "extraInfo": {"py_callstack": "<trace>", "timestamp": "<unix
   * seconds>"}}}}.
   *
   * @throws UncheckedIOException if the file cannot be written
   */
  public static void write(Path file, Throwable error, Instant when) {
    StringWriter trace = new StringWriter();
    error.printStackTrace(new PrintWriter(trace));
    String message =
        error.getClass().getName() + (error.getMessage() == null ? "" : ": " + error.getMessage());
    String json =
        "{\"message\": {\"message\": "
            + Json.quote(message)
            + ", \"extraInfo\": {\"py_callstack\": "
            + Json.quote(trace.toString())
            + ", \"timestamp\": \""
            + when.getEpochSecond()
            + "\"}}}";
    try {
      if (file.getParent() != null) {
        Files.createDirectories(file.getParent());
      }
      Files.writeString(file, json, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the error file " + file, e);
    }
  }
}
