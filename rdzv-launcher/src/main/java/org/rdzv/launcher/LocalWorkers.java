package org.rdzv.launcher;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.IntConsumer;

/**
 * The worker processes of one attempt on one agent: started together, each in a session of its own
 * (as PyTorch 2.x does), each watched by a thread blocked in {@link Process#waitFor()} (so an exit
 * is reported the moment it happens), stopped together: SIGTERM to each worker and every process it
 * started ({@link ProcessTree}: its session, its descendants, and processes that left both but hold
 * its output), a grace period, then SIGKILL to whatever is left. Thread-safe.
 */
final class LocalWorkers {
  private static final System.Logger LOG = System.getLogger(LocalWorkers.class.getName());

  /**
   * How to start one worker.
   *
   * @param dir the worker's log directory ({@code attempt_<n>/<local_rank>}); holds its log files.
   *     {@code null} for none: then {@code redirect} and {@code tee} must be {@link Std#NONE}
   * @param redirect streams written to files only
   * @param tee streams written to files and the console, prefixed
   * @param prefix the line prefix for tee'd output
   * @param console whether the worker's output may reach the console at all ({@code
   *     --local-ranks-filter}); when not, what would go there is discarded and tee'd streams go to
   *     their files only
   */
  record Spec(
      int localRank,
      int globalRank,
      List<String> command,
      Map<String, String> environment,
      Path dir,
      Std redirect,
      Std tee,
      String prefix,
      boolean console) {}

  /** One running (or finished) worker. */
  static final class Worker {
    final Spec spec;
    final Process process;
    final List<Thread> pumps = new ArrayList<>();
    final Instant started;

    /** The worker as the process tree knows it (its session, start time and outputs). */
    final ProcessTree.Root root;

    Worker(Spec spec, Process process, Instant started) {
      this.spec = spec;
      this.process = process;
      this.started = started;
      this.root =
          new ProcessTree.Root(
              process.pid(),
              ProcessTree.stat(process.pid()).map(ProcessTree.Stat::startTicks).orElse(0L),
              ProcessTree.outputs(process.pid(), spec.dir()));
    }
  }

  private final List<Worker> workers;

  /** Held by the one caller of {@link #stop} that stops; others wait for it, bounded. */
  private final ReentrantLock stopping = new ReentrantLock();

  /** What {@link #stop} takes beyond the grace: the SIGKILL pass and draining output. */
  private static final long STOP_SLACK_NANOS = TimeUnit.SECONDS.toNanos(6);

  private LocalWorkers(List<Worker> workers) {
    this.workers = workers;
  }

  /**
   * Starts every worker; {@code onExit} receives a worker's local rank when it exits (on another
   * thread). If one cannot start, those already started are killed.
   *
   * @param out console for stdout, or {@code null} to let workers inherit this process's stdout
   * @param err the same for stderr
   * @throws UncheckedIOException if a program cannot be started
   */
  static LocalWorkers start(
      List<Spec> specs, PrintStream out, PrintStream err, IntConsumer onExit) {
    List<Worker> started = new ArrayList<>();
    try {
      for (Spec spec : specs) {
        started.add(startOne(spec, out, err));
      }
    } catch (IOException | RuntimeException e) {
      LocalWorkers partial = new LocalWorkers(started);
      partial.stop(Duration.ZERO);
      if (e instanceof IOException io) {
        throw new UncheckedIOException(
            "cannot start worker program " + specs.get(0).command().get(0) + ": " + io.getMessage(),
            io);
      }
      throw (RuntimeException) e;
    }
    for (Worker w : started) {
      // A thread per worker blocks in waitFor(): Process.onExit() completes through the common
      // ForkJoinPool, which a busy or tiny pool (2 cores: parallelism 1) can delay indefinitely.
      Thread.ofPlatform()
          .daemon()
          .name("worker-" + w.process.pid() + "-exit")
          .start(
              () -> {
                while (true) {
                  try {
                    w.process.waitFor();
                    break;
                  } catch (InterruptedException e) {
                    // nobody interrupts this thread on purpose; keep waiting
                  }
                }
                onExit.accept(w.spec.localRank());
              });
    }
    return new LocalWorkers(started);
  }

  private static Worker startOne(Spec spec, PrintStream out, PrintStream err) throws IOException {
    ProcessBuilder builder = new ProcessBuilder(ProcessTree.inNewSession(spec.command()));
    builder.environment().putAll(spec.environment());
    if (ProcessTree.SETSID != null) {
      // setsid would report a missing program only as its own exit status; fail as before instead.
      requireExecutable(spec.command().get(0), builder.environment().get("PATH"));
    }
    Path outFile = null;
    Path errFile = null;
    if (spec.dir() != null) {
      Files.createDirectories(spec.dir());
      outFile = spec.dir().resolve("stdout.log");
      errFile = spec.dir().resolve("stderr.log");
    }
    boolean outTee = spec.console() && spec.tee().out();
    boolean errTee = spec.console() && spec.tee().err();
    boolean outPump =
        configure(
            builder,
            true,
            spec.redirect().out() || spec.tee().out(),
            outTee,
            spec.console(),
            out,
            outFile);
    boolean errPump =
        configure(
            builder,
            false,
            spec.redirect().err() || spec.tee().err(),
            errTee,
            spec.console(),
            err,
            errFile);
    Process process = builder.start();
    Worker worker = new Worker(spec, process, Instant.now());
    if (outPump) {
      worker.pumps.add(
          pump(
              process.getInputStream(),
              outTee ? outFile : null,
              console(out, System.out),
              outTee ? spec.prefix() : "",
              process.pid()));
    }
    if (errPump) {
      worker.pumps.add(
          pump(
              process.getErrorStream(),
              errTee ? errFile : null,
              console(err, System.err),
              errTee ? spec.prefix() : "",
              process.pid()));
    }
    return worker;
  }

  /** Fails like {@link ProcessBuilder#start()} when {@code program} cannot be executed. */
  static void requireExecutable(String program, String path) throws IOException {
    List<Path> candidates = new ArrayList<>();
    if (program.contains("/")) {
      candidates.add(Path.of(program));
    } else if (path != null) {
      for (String dir : path.split(":")) {
        candidates.add(Path.of(dir.isEmpty() ? "." : dir, program));
      }
    }
    boolean exists = false;
    for (Path candidate : candidates) {
      if (Files.isRegularFile(candidate)) {
        exists = true;
        if (Files.isExecutable(candidate)) {
          return;
        }
      }
    }
    throw new IOException(
        "Cannot run program \""
            + program
            + "\": "
            + (exists ? "error=13, Permission denied" : "error=2, No such file or directory"));
  }

  private static PrintStream console(PrintStream given, PrintStream fallback) {
    return given != null ? given : fallback;
  }

  /**
   * Sets up one stream: a file alone is a direct redirect; the console alone is inherited (or
   * pumped into a given stream); both need a pump; neither (a filtered rank's console stream) is
   * discarded. Returns whether a pump is needed.
   *
   * @param toFile whether the stream goes to its log file ({@code --redirects} or {@code --tee})
   * @param tee whether it also goes to the console
   * @param shown whether the worker's output may reach the console
   */
  private static boolean configure(
      ProcessBuilder builder,
      boolean stdout,
      boolean toFile,
      boolean tee,
      boolean shown,
      PrintStream console,
      Path file) {
    boolean toConsole = tee || (!toFile && shown);
    ProcessBuilder.Redirect target;
    boolean pump = false;
    if (!toFile && !toConsole) {
      target = ProcessBuilder.Redirect.DISCARD;
    } else if (toFile && !toConsole) {
      target = ProcessBuilder.Redirect.to(file.toFile());
    } else if (!toFile && console == null) {
      target = ProcessBuilder.Redirect.INHERIT;
    } else {
      target = ProcessBuilder.Redirect.PIPE;
      pump = true;
    }
    if (stdout) {
      builder.redirectOutput(target);
    } else {
      builder.redirectError(target);
    }
    return pump;
  }

  /** Copies lines from a worker's stream to the console (with the prefix) and to its log file. */
  private static Thread pump(
      InputStream in, Path file, PrintStream console, String prefix, long pid) {
    byte[] prefixBytes = prefix.getBytes(StandardCharsets.UTF_8);
    return Thread.ofPlatform()
        .daemon()
        .name("worker-" + pid + "-output")
        .start(
            () -> {
              try (in;
                  OutputStream log =
                      file == null
                          ? OutputStream.nullOutputStream()
                          : Files.newOutputStream(file)) {
                LineSplitter lines = new LineSplitter();
                byte[] buffer = new byte[8192];
                int n;
                while ((n = in.read(buffer)) > 0) {
                  log.write(buffer, 0, n);
                  log.flush();
                  lines.feed(buffer, n, line -> writeLine(console, prefixBytes, line));
                }
                lines.finish(line -> writeLine(console, prefixBytes, line));
              } catch (IOException e) {
                LOG.log(
                    Level.DEBUG,
                    "output of worker {0} ended: {1}",
                    String.valueOf(pid),
                    e.getMessage());
              }
            });
  }

  private static void writeLine(PrintStream console, byte[] prefix, byte[] line) {
    byte[] all = new byte[prefix.length + line.length];
    System.arraycopy(prefix, 0, all, 0, prefix.length);
    System.arraycopy(line, 0, all, prefix.length, line.length);
    console.write(all, 0, all.length);
    console.flush();
  }

  /** Splits a byte stream into lines that keep their terminating newline. */
  static final class LineSplitter {
    private byte[] pending = new byte[0];

    interface Sink {
      void line(byte[] line);
    }

    void feed(byte[] buffer, int length, Sink sink) {
      int start = 0;
      for (int i = 0; i < length; i++) {
        if (buffer[i] == '\n') {
          byte[] line = new byte[pending.length + i + 1 - start];
          System.arraycopy(pending, 0, line, 0, pending.length);
          System.arraycopy(buffer, start, line, pending.length, i + 1 - start);
          pending = new byte[0];
          sink.line(line);
          start = i + 1;
        }
      }
      if (start < length) {
        byte[] more = new byte[pending.length + length - start];
        System.arraycopy(pending, 0, more, 0, pending.length);
        System.arraycopy(buffer, start, more, pending.length, length - start);
        pending = more;
      }
    }

    void finish(Sink sink) {
      if (pending.length > 0) {
        byte[] line = new byte[pending.length + 1];
        System.arraycopy(pending, 0, line, 0, pending.length);
        line[pending.length] = '\n';
        pending = new byte[0];
        sink.line(line);
      }
    }
  }

  List<Worker> workers() {
    return workers;
  }

  /** Process ids by local rank. */
  Map<Integer, Long> pids() {
    Map<Integer, Long> pids = new LinkedHashMap<>();
    for (Worker w : workers) {
      pids.put(w.spec.localRank(), w.process.pid());
    }
    return pids;
  }

  /**
   * The group's state now: {@link WorkerState#FAILED} as soon as one worker exited non-zero, {@link
   * WorkerState#SUCCEEDED} when all exited 0, else {@link WorkerState#HEALTHY}.
   */
  WorkerState state() {
    boolean allDone = true;
    for (Worker w : workers) {
      if (w.process.isAlive()) {
        allDone = false;
      } else if (w.process.exitValue() != 0) {
        return WorkerState.FAILED;
      }
    }
    return allDone ? WorkerState.SUCCEEDED : WorkerState.HEALTHY;
  }

  /** PyTorch's exit codes of the workers that have exited, by local rank. */
  Map<Integer, Integer> exitCodes() {
    Map<Integer, Integer> codes = new LinkedHashMap<>();
    for (Worker w : workers) {
      if (!w.process.isAlive()) {
        codes.put(w.spec.localRank(), ProcessFailure.torchExitCode(w.process.exitValue()));
      }
    }
    return codes;
  }

  /** The workers that have exited non-zero, by global rank, in local-rank order. */
  Map<Integer, ProcessFailure> failures(Instant now) {
    Map<Integer, ProcessFailure> failures = new LinkedHashMap<>();
    for (Worker w : workers) {
      if (!w.process.isAlive() && w.process.exitValue() != 0) {
        failures.put(
            w.spec.globalRank(),
            ProcessFailure.of(
                w.spec.localRank(),
                w.spec.globalRank(),
                w.process.pid(),
                ProcessFailure.torchExitCode(w.process.exitValue()),
                w.spec.environment().getOrDefault("TORCHELASTIC_ERROR_FILE", "").isEmpty()
                    ? null
                    : Path.of(w.spec.environment().get("TORCHELASTIC_ERROR_FILE")),
                now));
      }
    }
    return failures;
  }

  /**
   * Stops every worker that still runs, and every process it started: SIGTERM to all of them at
   * once, up to {@code grace} for them to exit, then SIGKILL to whatever is left (processes found
   * anew, so children started meanwhile go too). Returns within {@code grace} plus a few seconds
   * whatever the processes do. Idempotent.
   */
  void stop(Duration grace) {
    // The agent's run and a signal handler may both stop the workers: one does, the other waits
    // for it, never past the same bound.
    boolean locked = false;
    try {
      locked = stopping.tryLock(grace.toNanos() + STOP_SLACK_NANOS, TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (!locked) {
      return;
    }
    try {
      stopLocked(grace);
    } finally {
      stopping.unlock();
    }
  }

  private void stopLocked(Duration grace) {
    long deadline = System.nanoTime() + grace.toNanos();
    Set<Long> agentSessions = ProcessTree.agentSessions();
    Map<Long, String> first = tree(agentSessions);
    for (Worker w : workers) {
      if (w.process.isAlive()) {
        // torchrun's line, so logs read the same.
        LOG.log(
            Level.WARNING,
            "Sending process {0} closing signal SIGTERM",
            String.valueOf(w.process.pid()));
        w.process.destroy();
      }
    }
    signal(first, false);
    awaitGone(first.keySet(), deadline);
    Map<Long, String> left = tree(agentSessions);
    for (Worker w : workers) {
      if (w.process.isAlive()) {
        LOG.log(
            Level.WARNING,
            "Unable to shutdown process {0} via SIGTERM, forcefully exiting via SIGKILL",
            String.valueOf(w.process.pid()));
        w.process.destroyForcibly();
      }
    }
    for (Long pid : first.keySet()) {
      left.putIfAbsent(pid, first.get(pid));
    }
    signal(left, true);
    // SIGKILL cannot be refused; this wait only lets the kernel finish. (Orphans are reaped by
    // init; where no init reaps, they linger as zombies, which this wait does not count.)
    awaitGone(left.keySet(), System.nanoTime() + TimeUnit.SECONDS.toNanos(2));
    awaitOutput(Duration.ofSeconds(2));
  }

  /**
   * The live processes the workers started (not the workers themselves), with what started them,
   * for log lines: descendants, and what {@link ProcessTree#members} finds.
   */
  private Map<Long, String> tree(Set<Long> agentSessions) {
    Map<Long, String> tree = new LinkedHashMap<>();
    List<ProcessTree.Root> roots = new ArrayList<>();
    Set<Long> workerPids = new java.util.HashSet<>();
    for (Worker w : workers) {
      workerPids.add(w.process.pid());
      roots.add(w.root);
      w.process.descendants().forEach(h -> tree.put(h.pid(), "worker " + w.spec.localRank()));
    }
    for (long pid : ProcessTree.members(roots, agentSessions)) {
      tree.putIfAbsent(pid, "a worker");
    }
    tree.keySet().removeAll(workerPids);
    return tree;
  }

  /** Sends SIGTERM (or SIGKILL) to each live process of {@code tree}. */
  private static void signal(Map<Long, String> tree, boolean kill) {
    for (var e : tree.entrySet()) {
      Optional<ProcessHandle> h = ProcessHandle.of(e.getKey());
      if (h.isEmpty() || !running(e.getKey())) {
        continue; // gone, or a zombie its parent has yet to reap
      }
      LOG.log(
          kill ? Level.WARNING : Level.INFO,
          "Sending process {0} ({1}, started by {2}) closing signal {3}",
          String.valueOf(e.getKey()),
          h.get().info().command().orElse("?"),
          e.getValue(),
          kill ? "SIGKILL" : "SIGTERM");
      if (kill) {
        h.get().destroyForcibly();
      } else {
        h.get().destroy();
      }
    }
  }

  /** Waits until no worker and none of {@code others} runs, or until {@code deadline}. */
  private void awaitGone(Set<Long> others, long deadline) {
    long pause = 5_000_000;
    while (System.nanoTime() - deadline < 0) {
      boolean alive = false;
      for (Worker w : workers) {
        alive |= w.process.isAlive();
      }
      if (!alive && others.stream().noneMatch(LocalWorkers::running)) {
        return;
      }
      // Polling with a deadline: the processes are not our children, so nothing signals their end.
      java.util.concurrent.locks.LockSupport.parkNanos(
          Math.min(pause, Math.max(0, deadline - System.nanoTime())));
      pause = Math.min(pause * 2, 100_000_000);
      if (Thread.interrupted()) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  /** Whether a process is alive and not a zombie waiting to be reaped. */
  private static boolean running(long pid) {
    return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)
        && !ProcessTree.isZombie(pid);
  }

  /** Waits (bounded) for the output pumps to drain what the workers wrote before exiting. */
  void awaitOutput(Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    for (Worker w : workers) {
      for (Thread pump : w.pumps) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          return;
        }
        try {
          pump.join(Duration.ofNanos(left));
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return;
        }
      }
    }
  }
}
