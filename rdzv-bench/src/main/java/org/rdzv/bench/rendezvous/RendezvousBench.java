package org.rdzv.bench.rendezvous;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.rdzv.bench.etcd.EtcdRendezvousBenchmark;
import org.rdzv.bench.rendezvous.RendezvousBenchmark.Result;

/**
 * The engine of {@code rdzv bench rendezvous}: N Java nodes join one round ({@code min = max = N})
 * against an embedded store (c10d) or the backend at the endpoint; with {@code vsTorch}, N PyTorch
 * 1.13 nodes and N PyTorch 2.6 nodes (where the 2.6 peer is installed) do the same against the same
 * kind of store first, and the ratio to each is printed. The last line is {@code nodes=N seconds=S}
 * for rdzv. The etcd backends go to {@link EtcdRendezvousBenchmark}.
 */
public final class RendezvousBench {
  private RendezvousBench() {}

  /**
   * What to run; the command line has checked the values.
   *
   * @param nodes nodes in the rendezvous, at least 1
   * @param vsTorch whether to also run N PyTorch 1.13 nodes
   * @param backend {@code c10d}, an etcd backend, or another registered one (needs {@code
   *     endpoint})
   * @param endpoint the backend's endpoint for backends other than c10d, or {@code null}
   * @param config extra rendezvous options for the Java nodes
   * @param timeout the longest a side may take
   * @param python the interpreter that imports PyTorch 1.13
   * @param torch2 the command that starts PyTorch 2.6's interpreter (e.g. {@code
   *     [/opt/torch2-peer/enter, python3]}), or empty to compare with 1.13 only
   */
  public record Options(
      int nodes,
      boolean vsTorch,
      String backend,
      String endpoint,
      Map<String, Object> config,
      Duration timeout,
      String python,
      List<String> torch2) {
    public Options {
      config = Map.copyOf(config);
      torch2 = List.copyOf(torch2);
    }

    /** Compares with PyTorch 1.13 only. */
    public Options(
        int nodes,
        boolean vsTorch,
        String backend,
        String endpoint,
        Map<String, Object> config,
        Duration timeout,
        String python) {
      this(nodes, vsTorch, backend, endpoint, config, timeout, python, List.of());
    }
  }

  /**
   * Runs the benchmark, printing to {@code out}; returns 0, or 1 if the etcd benchmark's Java nodes
   * failed.
   *
   * @throws IllegalArgumentException if a backend other than c10d has no endpoint
   * @throws IllegalStateException if the rdzv run failed (after its lines are printed)
   */
  public static int run(PrintWriter out, Options o) {
    if (EtcdRendezvousBenchmark.BACKENDS.contains(o.backend())) {
      // etcd, etcd-v2, etcd-v3: starts its own etcd without an endpoint; with vsTorch, PyTorch's
      // matching etcd backend on the same etcd.
      return EtcdRendezvousBenchmark.run(
          out,
          new EtcdRendezvousBenchmark.Options(
              o.backend(),
              o.endpoint(),
              o.nodes(),
              o.timeout(),
              o.vsTorch(),
              o.python(),
              o.config()));
    }
    if (!o.backend().equals("c10d") && (o.endpoint() == null || o.endpoint().isBlank())) {
      throw new IllegalArgumentException(
          "--backend " + o.backend() + " needs --etcd-endpoint HOST:PORT.");
    }
    // One line per node at INFO would drown the figures.
    java.util.logging.Logger quiet = java.util.logging.Logger.getLogger("org.rdzv");
    quiet.setLevel(java.util.logging.Level.WARNING);
    List<Result> torches = new ArrayList<>();
    if (o.vsTorch()) {
      torches.add(RendezvousBenchmark.runTorch(o.nodes(), o.timeout(), o.python()));
      out.println(line(torches.get(0)));
      out.flush();
      if (!o.torch2().isEmpty()) {
        torches.add(RendezvousBenchmark.runTorch("torch-2.6", o.torch2(), o.nodes(), o.timeout()));
        out.println(line(torches.get(1)));
        out.flush();
      }
    }
    // An untimed round first, on its own store: class loading and the JIT are paid once by a
    // long-lived JVM (a scheduler, an operator), as PyTorch's side imports torch before its clock.
    if (o.backend().equals("c10d")) {
      int warm = warmUpNodes(o.nodes());
      RendezvousBenchmark.runJava(warm, o.timeout(), o.config());
      out.println("rdzv after an untimed warm-up round of " + warm + " nodes");
      out.flush();
    }
    Result java =
        o.backend().equals("c10d")
            ? RendezvousBenchmark.runJava(o.nodes(), o.timeout(), o.config())
            : RendezvousBenchmark.runJava(
                o.backend(), o.endpoint(), o.nodes(), o.timeout(), o.config());
    out.println(line(java));
    for (Result torch : torches) {
      String name = torch.implementation().substring("torch-".length());
      if (torch.ok() && java.ok()) {
        out.println(
            String.format(
                Locale.ROOT,
                "ratio torch-%s/rdzv=%.1f (rdzv is %.1fx faster than PyTorch %s)",
                name,
                torch.seconds() / java.seconds(),
                torch.seconds() / java.seconds(),
                name));
      } else if (!torch.ok() && java.ok()) {
        out.println(
            String.format(
                Locale.ROOT,
                "ratio torch-%s/rdzv>%.1f (torch %s: %s)",
                name,
                torch.seconds() / java.seconds(),
                name,
                torch.detail()));
      }
    }
    out.println(String.format(Locale.ROOT, "nodes=%d seconds=%.3f", o.nodes(), java.seconds()));
    out.flush();
    if (!java.ok()) {
      throw new IllegalStateException("the rdzv run failed: " + java.detail());
    }
    return 0;
  }

  /**
   * {@code --curve}: one round per size with {@code config}'s protocol, then (if any) PyTorch's
   * protocol at {@code pytorchSizes}, each against a fresh embedded store; prints {@code curve
   * protocol=P nodes=N seconds=S} per run, {@code curve protocol=P exponent=E} (the slope of log
   * seconds over log nodes, least squares) per protocol, and last {@code nodes=N seconds=S} of the
   * largest run of the first protocol. Returns whether every run succeeded.
   */
  public static boolean curve(
      PrintWriter out,
      List<Integer> sizes,
      List<Integer> pytorchSizes,
      Map<String, Object> config,
      Duration timeout) {
    java.util.logging.Logger quiet = java.util.logging.Logger.getLogger("org.rdzv");
    quiet.setLevel(java.util.logging.Level.SEVERE);
    String protocol = protocolOf(config);
    // A small round first: the JIT's warm-up would otherwise land on the first size.
    RendezvousBenchmark.runJava(warmUpNodes(sizes.get(0)), timeout, config);
    List<Result> mine = new ArrayList<>();
    boolean ok = curveOf(out, protocol, sizes, config, timeout, mine);
    if (!pytorchSizes.isEmpty()) {
      ok &=
          curveOf(
              out,
              "pytorch",
              pytorchSizes,
              withPyTorchProtocol(config),
              timeout,
              new ArrayList<>());
    }
    if (!mine.isEmpty()) {
      Result last = mine.get(mine.size() - 1);
      out.println(
          String.format(Locale.ROOT, "nodes=%d seconds=%.3f", last.nodes(), last.seconds()));
    }
    out.flush();
    return ok;
  }

  private static boolean curveOf(
      PrintWriter out,
      String protocol,
      List<Integer> sizes,
      Map<String, Object> config,
      Duration timeout,
      List<Result> runs) {
    boolean ok = true;
    List<double[]> points = new ArrayList<>();
    for (int n : sizes) {
      RendezvousBenchmark.Measured m = RendezvousBenchmark.runJavaMeasured(n, timeout, config);
      Result r = m.result();
      runs.add(r);
      out.println(
          String.format(
              Locale.ROOT,
              "curve protocol=%s nodes=%d seconds=%.3f%s %s requests_per_node=%.1f",
              protocol,
              n,
              r.seconds(),
              r.ok() ? "" : " FAILED: " + r.detail(),
              m.store(),
              m.store().requests() / (double) n));
      out.flush();
      if (r.ok()) {
        points.add(new double[] {n, r.seconds()});
      } else {
        ok = false;
      }
    }
    if (points.size() >= 2) {
      out.println(
          String.format(
              Locale.ROOT, "curve protocol=%s exponent=%.2f", protocol, growthExponent(points)));
    }
    return ok;
  }

  /**
   * Nodes of the untimed warm-up round before a timed round of {@code nodes}: enough for the JIT to
   * have compiled the join path of client and server (1,000; after 200 the first 1,000-node round
   * still took 1.4x the next), never more than the round itself.
   */
  public static int warmUpNodes(int nodes) {
    return Math.min(1000, nodes);
  }

  /**
   * The slope of log seconds over log nodes, least squares: how the time grows with N (1 is linear,
   * 2 quadratic).
   *
   * @param points {@code {nodes, seconds}} pairs, at least two different sizes
   */
  public static double growthExponent(List<double[]> points) {
    double mx = 0;
    double my = 0;
    for (double[] p : points) {
      mx += Math.log(p[0]);
      my += Math.log(p[1]);
    }
    mx /= points.size();
    my /= points.size();
    double sxy = 0;
    double sxx = 0;
    for (double[] p : points) {
      double dx = Math.log(p[0]) - mx;
      sxy += dx * (Math.log(p[1]) - my);
      sxx += dx * dx;
    }
    return sxy / sxx;
  }

  /**
   * The protocol {@code config} asks for: {@code rendezvous_protocol}, else {@code protocol} where
   * it names one ({@code pytorch} or {@code scalable}; on etcd it is the transport), else {@code
   * pytorch}.
   */
  public static String protocolOf(Map<String, Object> config) {
    Object explicit = config.get("rendezvous_protocol");
    if (explicit != null) {
      return String.valueOf(explicit);
    }
    Object p = config.get("protocol");
    return "scalable".equals(String.valueOf(p)) ? "scalable" : "pytorch";
  }

  /** {@code config} with PyTorch's protocol chosen instead of whatever it chose. */
  public static Map<String, Object> withPyTorchProtocol(Map<String, Object> config) {
    Map<String, Object> pytorch = new java.util.HashMap<>(config);
    if ("scalable".equals(String.valueOf(pytorch.get("protocol")))) {
      pytorch.remove("protocol");
    }
    pytorch.put("rendezvous_protocol", "pytorch");
    return pytorch;
  }

  private static String line(Result r) {
    return String.format(
        Locale.ROOT,
        "%s nodes=%d seconds=%.3f%s",
        r.implementation(),
        r.nodes(),
        r.seconds(),
        r.ok() ? "" : " FAILED: " + r.detail());
  }
}
