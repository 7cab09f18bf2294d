package org.rdzv.launcher;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.rdzv.store.TcpStore;
import org.rdzv.testing.Await;
import org.rdzv.testing.ChildProcess;
import org.rdzv.testing.FreePort;
import org.rdzv.testing.Torch;

/**
 * One job of two nodes, two workers each: a real torchrun agent of a {@link Torch} and an rdzv
 * agent ({@link AgentMain}, a JVM of its own). The side that starts first hosts the store (c10d:
 * {@code is_host}; static: node rank 0) and, starting first, has the lower pid, which makes it
 * agent 0 of a c10d round (ranks follow {@code (host, pid)}; both run on this host). The second
 * starts once the first is in the rendezvous.
 */
final class MixedJob implements AutoCloseable {
  enum Side {
    RDZV,
    TORCHRUN;

    Side other() {
      return this == RDZV ? TORCHRUN : RDZV;
    }
  }

  private static final Pattern ROUND =
      Pattern.compile(
          "event RendezvousCompleted\\[round=(\\d+), groupRank=(\\d+), groupWorldSize=(\\d+),"
              + " worldSize=(\\d+), masterAddr=([^,]*), masterPort=(\\d+),"
              + " useAgentStore=(true|false)]");

  final Torch torch;
  final String backend;
  final Side first;
  final String runId = "mixed-" + UUID.randomUUID();
  final int port = FreePort.next();
  private final List<ChildProcess> children = new ArrayList<>();
  ChildProcess rdzv;
  ChildProcess torchrun;

  /**
   * @param backend {@code c10d} or {@code static}
   */
  MixedJob(Torch torch, String backend, Side first) {
    this.torch = torch;
    this.backend = backend;
    this.first = first;
  }

  /**
   * Starts both sides running {@code script} with {@code maxRestarts}; {@code env} goes to both.
   * Returns when both run (the second one started).
   */
  MixedJob start(String script, int maxRestarts, String nnodes, Map<String, String> env) {
    torch.require();
    for (Side side : List.of(first, first.other())) {
      boolean isFirst = side == first;
      if (side == Side.RDZV) {
        rdzv = startRdzv(script, maxRestarts, nnodes, isFirst, env);
      } else {
        torchrun = startTorchrun(script, maxRestarts, nnodes, isFirst, env);
      }
      if (isFirst) {
        awaitInRendezvous();
      }
    }
    return this;
  }

  /**
   * Lost nodes are noticed after this many seconds ({@code keep_alive_interval} 1 s times {@code
   * keep_alive_max_attempt}), where a test kills one; else PyTorch's 15 s. Generous: a loaded
   * machine delays heartbeats, and a node thought lost while it runs breaks the round.
   */
  private int lossSeconds;

  MixedJob noticeLossWithin(int seconds) {
    lossSeconds = seconds;
    return this;
  }

  private String conf(boolean host, boolean rdzv) {
    if (backend.equals("static")) {
      return "rank=" + (host ? 0 : 1);
    }
    String conf = "is_host=" + host + ",last_call_timeout=1,join_timeout=90";
    if (rdzv && !torch.is2x()) {
      // A Java node that creates the state writes the 2.x dialect unless told (docs/launcher.md).
      conf += ",store_protocol=1.13";
    }
    return lossSeconds == 0
        ? conf
        : conf + ",keep_alive_interval=1,keep_alive_max_attempt=" + lossSeconds;
  }

  private ChildProcess startRdzv(
      String script, int maxRestarts, String nnodes, boolean host, Map<String, String> env) {
    List<String> command = new ArrayList<>();
    command.add(ProcessHandle.current().info().command().orElse("java"));
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(AgentMain.class.getName());
    command.add("backend=" + backend);
    command.add("127.0.0.1:" + port);
    command.add(backend.equals("static") ? "none" : runId);
    command.add(backend.equals("static") ? "2" : nnodes);
    command.add("2");
    command.add("" + maxRestarts);
    command.add(conf(host, true));
    command.add("--");
    command.addAll(torch.python());
    command.add("-u");
    command.add(script);
    return track(ChildProcess.start(command, env));
  }

  private ChildProcess startTorchrun(
      String script, int maxRestarts, String nnodes, boolean host, Map<String, String> env) {
    List<String> command = new ArrayList<>(torch.torchrun());
    command.add("--nproc_per_node=2");
    command.add("--max_restarts=" + maxRestarts);
    command.add("--monitor_interval=1");
    command.add("--tee=3");
    if (backend.equals("static")) {
      command.add("--nnodes=2");
      command.add("--node_rank=" + (host ? 0 : 1));
      command.add("--master_addr=127.0.0.1");
      command.add("--master_port=" + port);
    } else {
      command.add("--nnodes=" + nnodes);
      command.add("--rdzv_backend=c10d");
      command.add("--rdzv_endpoint=127.0.0.1:" + port);
      command.add("--rdzv_id=" + runId);
      command.add("--rdzv_conf=" + conf(host, false));
    }
    command.add(script);
    return track(ChildProcess.start(command, env));
  }

  private ChildProcess track(ChildProcess child) {
    children.add(child);
    return child;
  }

  /**
   * Waits until the first side is in: its c10d state is in the store it hosts, or its static store
   * accepts connections.
   */
  private void awaitInRendezvous() {
    String key = org.rdzv.dynamic.C10dRendezvous.stateKey(runId);
    Await.until(
        "the first node (" + first + ") in the rendezvous",
        Duration.ofSeconds(90),
        () -> {
          if (backend.equals("static")) {
            // Node 0's store is up. A bare connection: no store protocol to confuse its server.
            try (java.net.Socket socket = new java.net.Socket("127.0.0.1", port)) {
              return true;
            } catch (java.io.IOException e) {
              return false;
            }
          }
          try (TcpStore store = TcpStore.connect("127.0.0.1", port)) {
            return store.check(List.of(key))
                && !new String(store.get(key), java.nio.charset.StandardCharsets.US_ASCII)
                    .equals("Y2FuaW1hZGFt");
          } catch (RuntimeException e) {
            return false;
          }
        });
  }

  ChildProcess side(Side side) {
    return side == Side.RDZV ? rdzv : torchrun;
  }

  /** Waits for both to exit and returns their codes. */
  void awaitSuccess(Duration timeout) {
    for (Side side : Side.values()) {
      ChildProcess child = side(side);
      int code = child.awaitExit(timeout);
      if (code != 0) {
        throw new AssertionError(
            side
                + " exited with "
                + code
                + "\n"
                + "--- rdzv:\n"
                + rdzv.output()
                + "\n--- torchrun:\n"
                + torchrun.output());
      }
    }
  }

  /** A completed round as our agent reported it. */
  record Round(
      int round, int groupRank, int groupWorldSize, int worldSize, boolean useAgentStore) {}

  List<Round> rdzvRounds() {
    List<Round> rounds = new ArrayList<>();
    for (String line : rdzv.lines()) {
      Matcher m = ROUND.matcher(line);
      if (m.find()) {
        rounds.add(
            new Round(
                Integer.parseInt(m.group(1)),
                Integer.parseInt(m.group(2)),
                Integer.parseInt(m.group(3)),
                Integer.parseInt(m.group(4)),
                Boolean.parseBoolean(m.group(7))));
      }
    }
    return rounds;
  }

  String output() {
    return "--- rdzv:\n" + rdzv.output() + "\n--- torchrun:\n" + torchrun.output();
  }

  @Override
  public void close() {
    children.forEach(ChildProcess::close);
  }
}
