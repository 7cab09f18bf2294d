package org.rdzv.cli;

/** Turns an exception chain into the one line a user sees. */
final class Errors {
  private Errors() {}

  /**
   * The exception's message, followed by the messages of its causes where they add something ("The
   * connection to the C10d store has failed: Connection refused (127.0.0.1:29400)").
   */
  static String oneLine(Throwable error) {
    StringBuilder line = new StringBuilder();
    String last = null;
    for (Throwable t = error; t != null && t.getCause() != t; t = t.getCause()) {
      String message = t.getMessage();
      if (message == null || message.isBlank()) {
        message = t.getClass().getSimpleName();
      }
      message = message.replace(" See inner exception for details.", "").strip();
      message = message.replaceAll("\\s*\\R\\s*", " ");
      if (last != null && last.contains(message)) {
        continue;
      }
      if (line.length() > 0) {
        if (line.charAt(line.length() - 1) == '.') {
          line.setLength(line.length() - 1);
        }
        line.append(": ");
      }
      line.append(message);
      last = message;
      if (line.length() > 400) {
        break;
      }
    }
    return line.toString();
  }
}
