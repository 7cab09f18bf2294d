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
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.IntConsumer;

/**
 * The worker processes of one attempt on one agent: started together, each watched by a thread
 * blocked in {@link Process#waitFor()} (so an exit is reported the moment it happens), stopped
 * together (SIGTERM, a grace period, then SIGKILL for each worker and every process it started).
 * Thread-safe.
 */
final class LocalWorkers {
  private static final System.Logger LOG = System.getLogger(LocalWorkers.class.getName());

  /**
   * How to start one worker.
   *
   * @param dir the worker's log directory ({@code attempt_<n>/<local_rank>}); holds its log files
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

    Worker(Spec spec, Process process, Instant started) {
      this.spec = spec;
      this.process = process;
      this.started = started;
    }
  }

  private final List<Worker> workers;

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
    ProcessBuilder builder = new ProcessBuilder(spec.command());
    builder.environment().putAll(spec.environment());
    Files.createDirectories(spec.dir());
    Path outFile = spec.dir().resolve("stdout.log");
    Path errFile = spec.dir().resolve("stderr.log");
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
                w.spec.environment().containsKey("TORCHELASTIC_ERROR_FILE")
                    ? Path.of(w.spec.environment().get("TORCHELASTIC_ERROR_FILE"))
                    : null,
                now));
      }
    }
    return failures;
  }

  /**
   * Stops every worker that still runs: SIGTERM, up to {@code grace} for them to exit, then SIGKILL
   * to each worker and to every process it had started. Returns when all are gone (or after a last
   * short wait). Idempotent.
   */
  void stop(Duration grace) {
    Set<ProcessHandle> tree = new LinkedHashSet<>();
    List<CompletableFuture<Process>> exits = new ArrayList<>();
    for (Worker w : workers) {
      if (w.process.isAlive()) {
        w.process.descendants().forEach(tree::add);
        w.process.destroy();
        exits.add(w.process.onExit());
      }
    }
    await(exits, grace);
    for (Worker w : workers) {
      if (w.process.isAlive()) {
        w.process.descendants().forEach(tree::add);
        LOG.log(
            Level.WARNING,
            "worker {0} (pid {1}) ignored SIGTERM for {2}; killing it",
            String.valueOf(w.spec.localRank()),
            String.valueOf(w.process.pid()),
            grace);
        w.process.destroyForcibly();
      }
    }
    List<CompletableFuture<ProcessHandle>> treeExits = new ArrayList<>();
    for (ProcessHandle h : tree) {
      if (h.isAlive()) {
        h.destroyForcibly();
        treeExits.add(h.onExit());
      }
    }
    await(exits, Duration.ofSeconds(10));
    // SIGKILL cannot be refused; this wait only lets the kernel finish. (Orphans are reaped by
    // init; where no init reaps, they linger as zombies, which this wait would not see end.)
    await(treeExits, Duration.ofSeconds(2));
    awaitOutput(Duration.ofSeconds(2));
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

  private static void await(List<? extends CompletableFuture<?>> futures, Duration timeout) {
    if (futures.isEmpty()) {
      return;
    }
    try {
      CompletableFuture.allOf(futures.toArray(CompletableFuture[]::new))
          .get(timeout.toNanos(), TimeUnit.NANOSECONDS);
    } catch (TimeoutException e) {
      // the caller escalates
    } catch (ExecutionException e) {
      LOG.log(Level.DEBUG, "waiting for worker exit failed", e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
