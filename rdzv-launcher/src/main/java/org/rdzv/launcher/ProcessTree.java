package org.rdzv.launcher;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Everything a worker started, found on Linux through {@code /proc}, so that stopping a worker
 * stops its whole tree, including processes that left it.
 *
 * <p>A worker runs in a session of its own (started through {@code setsid}, as PyTorch 2.x starts
 * workers with {@code start_new_session=True}), so its session holds every process it started that
 * did not start a session itself, even after a double fork reparented them to init. A process that
 * did (a daemon) is still found if it holds a worker's standard output or error for writing — which
 * is what keeps a reader of the agent's output waiting — provided it started after the worker and
 * belongs to no session of the agent or its ancestors (so the shell that started the agent, and the
 * agent's other children, are never taken for a worker's).
 *
 * <p>Where {@code /proc} or {@code setsid} is missing, only the live descendants are found.
 */
final class ProcessTree {
  private static final Path PROC = Path.of("/proc");

  /** Whether {@code /proc} answers the questions asked here. */
  static final boolean AVAILABLE = Files.isReadable(PROC.resolve("self/stat"));

  /** {@code setsid}'s path, or {@code null}: workers then share the agent's session. */
  static final String SETSID = findSetsid();

  private ProcessTree() {}

  private static String findSetsid() {
    if (!AVAILABLE) {
      return null;
    }
    for (String candidate : List.of("/usr/bin/setsid", "/bin/setsid")) {
      if (Files.isExecutable(Path.of(candidate))) {
        return candidate;
      }
    }
    return null;
  }

  /**
   * The command that starts {@code command} in a new session: {@code setsid -w command...} ({@code
   * -w} keeps the exit status should {@code setsid} ever need to fork; it does not when the caller,
   * like a JVM child, leads no process group, so the pid stays the program's).
   */
  static List<String> inNewSession(List<String> command) {
    if (SETSID == null) {
      return command;
    }
    List<String> wrapped = new ArrayList<>(command.size() + 2);
    wrapped.add(SETSID);
    wrapped.add("-w");
    wrapped.addAll(command);
    return wrapped;
  }

  /** What {@code /proc/<pid>/stat} says about a process. */
  record Stat(long pid, char state, long ppid, long session, long startTicks) {}

  static Optional<Stat> stat(long pid) {
    try {
      String text = Files.readString(PROC.resolve(pid + "/stat"), StandardCharsets.UTF_8);
      // "pid (comm) state ppid pgrp session ... starttime(22)": comm may hold spaces and ')'.
      String[] f = text.substring(text.lastIndexOf(')') + 2).strip().split(" ");
      return Optional.of(
          new Stat(
              pid,
              f[0].charAt(0),
              Long.parseLong(f[1]),
              Long.parseLong(f[3]),
              Long.parseLong(f[19])));
    } catch (IOException | RuntimeException e) {
      return Optional.empty(); // gone, or not readable
    }
  }

  /** Whether the process has exited and waits to be reaped (state {@code Z}). */
  static boolean isZombie(long pid) {
    return stat(pid).map(s -> s.state() == 'Z' || s.state() == 'X').orElse(false);
  }

  /** The pids of every process now. */
  static List<Long> pids() {
    List<Long> pids = new ArrayList<>();
    try (DirectoryStream<Path> dirs = Files.newDirectoryStream(PROC)) {
      for (Path dir : dirs) {
        String name = dir.getFileName().toString();
        if (!name.isEmpty() && name.chars().allMatch(Character::isDigit)) {
          pids.add(Long.parseLong(name));
        }
      }
    } catch (IOException | RuntimeException e) {
      // no /proc: nothing to add
    }
    return pids;
  }

  /**
   * What a process's standard output and error are, when they are worth looking for later:
   * anonymous pipes ({@code pipe:[inode]}, which only inherit) and files under {@code ownDir} (the
   * worker's log directory); not terminals, {@code /dev/null} or other files, which unrelated
   * processes may hold too (a log file several jobs append to).
   */
  static Set<String> outputs(long pid, Path ownDir) {
    Path own = ownDir == null ? null : ownDir.toAbsolutePath().normalize();
    Set<String> out = new LinkedHashSet<>();
    if (!AVAILABLE) {
      return out;
    }
    for (int fd = 1; fd <= 2; fd++) {
      try {
        String target = Files.readSymbolicLink(PROC.resolve(pid + "/fd/" + fd)).toString();
        if (target.startsWith("pipe:")
            || (own != null && target.startsWith("/") && Path.of(target).startsWith(own))) {
          out.add(target);
        }
      } catch (IOException | RuntimeException e) {
        // gone already, or not ours to read
      }
    }
    return out;
  }

  /** The sessions of this process and of its ancestors: never a worker's. */
  static Set<Long> agentSessions() {
    Set<Long> sessions = new HashSet<>();
    long pid = ProcessHandle.current().pid();
    for (int depth = 0; depth < 64 && pid > 0; depth++) {
      Optional<Stat> s = stat(pid);
      if (s.isEmpty()) {
        break;
      }
      sessions.add(s.get().session());
      pid = s.get().ppid();
    }
    return sessions;
  }

  /** A worker as {@link #members} needs it: its pid (its session), start time and outputs. */
  record Root(long pid, long startTicks, Set<String> outputs) {}

  /**
   * The processes that belong to {@code roots}: those in a root's session, and those holding a
   * root's recorded output for writing that started after it, outside {@code excludedSessions}.
   * Never this process.
   */
  static Set<Long> members(List<Root> roots, Set<Long> excludedSessions) {
    Set<Long> found = new LinkedHashSet<>();
    if (!AVAILABLE || roots.isEmpty()) {
      return found;
    }
    long self = ProcessHandle.current().pid();
    Set<Long> sessions = new HashSet<>();
    for (Root r : roots) {
      // A worker leads its own session only when setsid started it.
      stat(r.pid()).filter(s -> s.session() == r.pid()).ifPresent(s -> sessions.add(r.pid()));
    }
    for (long pid : pids()) {
      if (pid == self) {
        continue;
      }
      Optional<Stat> stat = stat(pid);
      if (stat.isEmpty()) {
        continue;
      }
      Stat s = stat.get();
      if (sessions.contains(s.session()) && !excludedSessions.contains(s.session())) {
        found.add(pid);
        continue;
      }
      if (excludedSessions.contains(s.session())) {
        continue;
      }
      for (Root r : roots) {
        if (!r.outputs().isEmpty()
            && s.startTicks() >= r.startTicks()
            && writesTo(pid, r.outputs())) {
          found.add(pid);
          break;
        }
      }
    }
    return found;
  }

  /** Whether {@code pid} has one of {@code targets} open for writing. */
  private static boolean writesTo(long pid, Set<String> targets) {
    Path fds = PROC.resolve(pid + "/fd");
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(fds)) {
      for (Path fd : entries) {
        String target;
        try {
          target = Files.readSymbolicLink(fd).toString();
        } catch (IOException e) {
          continue;
        }
        if (targets.contains(target) && openForWriting(pid, fd.getFileName().toString())) {
          return true;
        }
      }
    } catch (IOException | RuntimeException e) {
      // gone, or another user's process
    }
    return false;
  }

  /** {@code /proc/<pid>/fdinfo/<fd>}: {@code flags:} in octal; access mode 1 or 2 writes. */
  private static boolean openForWriting(long pid, String fd) {
    try {
      for (String line : Files.readAllLines(PROC.resolve(pid + "/fdinfo/" + fd))) {
        if (line.startsWith("flags:")) {
          int mode = Integer.parseInt(line.substring(6).strip(), 8) & 3;
          return mode == 1 || mode == 2;
        }
      }
    } catch (IOException | RuntimeException e) {
      // gone
    }
    return false;
  }
}
