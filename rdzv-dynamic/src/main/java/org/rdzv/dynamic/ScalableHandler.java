package org.rdzv.dynamic;

import java.lang.System.Logger.Level;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;
import org.rdzv.api.PrefixStore;
import org.rdzv.api.RendezvousClosedException;
import org.rdzv.api.RendezvousException;
import org.rdzv.api.RendezvousInfo;
import org.rdzv.api.RendezvousStateException;
import org.rdzv.api.RendezvousStoreInfo;
import org.rdzv.api.RendezvousTimeoutException;
import org.rdzv.api.Store;
import org.rdzv.dynamic.spi.ScalableStore;

/**
 * The scalable protocol ({@code protocol=scalable}): a rendezvous whose every node costs O(1) store
 * operations to join, to heartbeat and to learn its rank, and whose round costs O(N); for jobs
 * whose nodes are all rdzv. See docs/scaling.md for the keys and the rules; in short, per round
 * {@code R}:
 *
 * <ul>
 *   <li>a node takes a ticket {@code t} from the sequence {@code rR/joined} and writes its
 *       descriptor to {@code rR/n/<t>}; ticket {@code min} writes the last-call deadline {@code
 *       rR/deadline};
 *   <li>ticket {@code max}, or any ticket {@code >= min} once the deadline passed, seals the
 *       sequence; the one seal that wins reads the descriptors (batched), orders them as PyTorch
 *       does and writes each ticket its rank ({@code rR/rank/<t>}), which that node alone waits
 *       for;
 *   <li>a node that finds the round sealed counts itself in {@code rR/waiting} (or {@code
 *       rR/redundant} when the round is full, as PyTorch 2.x's redundancy list) and waits for
 *       {@code r<R+1>/open}; participants read the counter, so agents re-rendezvous;
 *   <li>after completion each node beats {@code rR/hb/<t>} and watches one neighbour's beats (the
 *       next live ticket): a neighbour silent for the keep-alive bound is claimed dead once ({@code
 *       rR/gone/<t>}), logged in {@code rR/lost/<i>}, and every participant reads the log to tell
 *       its listeners; a node that re-rendezvouses or leaves claims its own ticket the same way;
 *       the claim that makes every participant gone opens round {@code R+1}.
 * </ul>
 *
 * <p>It writes a closed state of PyTorch's protocol under the run id so that PyTorch nodes (and
 * rdzv nodes with {@code protocol=pytorch}) that come later stop at once, and refuses to join a run
 * id that has a state of PyTorch's protocol.
 */
final class ScalableHandler implements DynamicRendezvousHandler {
  private static final System.Logger LOG =
      System.getLogger(DynamicRendezvousHandler.class.getName());

  /** The round of the closed state that fences PyTorch's protocol off a scalable run id. */
  static final long FENCE_ROUND = 1L << 62;

  /** How many lost-participant log entries a node reads per heartbeat at most. */
  private static final int LOG_BATCH = 64;

  /** Descriptors and ranks travel in batches of this many keys. */
  private static final int BATCH = 1024;

  private final ScalableStore store;
  private final AutoCloseable owned;
  private final RendezvousSettings settings;
  private final NodeDescriptor node;
  private final Clock clock;
  private final String backendName;
  private final List<Listener> listeners = new CopyOnWriteArrayList<>();
  private final Object lock = new Object();

  // The round this node is a participant of (guarded by lock); -1 when none.
  private long round = -1;
  private long ticket;
  private int rank;
  private int worldSize;
  private long tickets; // tickets of the round that got a rank or a tombstone (the ring's size)
  private boolean fenced;
  private volatile boolean handlerClosed;
  private Thread heartbeat;
  private final Set<NodeDescriptor> lost = new LinkedHashSet<>();
  private final AtomicLong logSeen = new AtomicLong();

  ScalableHandler(
      ScalableStore store,
      AutoCloseable owned,
      RendezvousSettings settings,
      NodeDescriptor node,
      Clock clock,
      String backendName) {
    this.store = store;
    this.owned = owned;
    this.settings = settings;
    this.node = node;
    this.clock = clock;
    this.backendName = backendName;
  }

  /** A handler of {@code provider}'s scalable protocol for {@code params}. */
  static ScalableHandler create(
      org.rdzv.dynamic.spi.RendezvousBackendProvider provider,
      org.rdzv.api.RendezvousParameters params,
      RendezvousSettings settings) {
    ScalableStore store = provider.createScalableStore(params, settings, false);
    return new ScalableHandler(
        store,
        null,
        settings,
        DynamicHandler.newNode(params.localAddr()),
        Clock.SYSTEM,
        provider.name());
  }

  // ---- keys

  static final String ROUND = "round";
  static final String CLOSED = "closed";

  static String key(long round, String name) {
    return "r" + round + "/" + name;
  }

  static String key(long round, String name, long index) {
    return "r" + round + "/" + name + "/" + index;
  }

  // ---- the handler

  @Override
  public String backend() {
    return backendName;
  }

  @Override
  public String runId() {
    return settings.runId();
  }

  @Override
  public NodeDescriptor node() {
    return node;
  }

  @Override
  public RendezvousInfo nextRendezvous() {
    if (handlerClosed) {
      throw new IllegalStateException("the handler is closed");
    }
    LOG.log(
        Level.INFO,
        "The node ''{0}'' attempts to join the next round of the rendezvous ''{1}'' (protocol=scalable).",
        node,
        settings.runId());
    fence();
    long previous;
    synchronized (lock) {
      previous = round;
    }
    stopHeartbeats();
    if (previous >= 0) {
      // As PyTorch: a participant that comes back leaves its round and waits for the next one,
      // which tells the other participants' agents (through numNodesWaiting) to come back too.
      leaveRound(previous, "left", true);
    }
    long deadline = clock.nanoTime() + settings.joinTimeout().toNanos();
    long after = previous; // a round this node must not join again
    while (true) {
      checkClosed();
      long r = store.add(ROUND, 0);
      if (r <= after) {
        awaitOpen(after + 1, deadline);
        continue;
      }
      long t = store.enter(key(r, "joined"));
      if (t < 0 || t > settings.maxNodes()) {
        waitForNextRound(r, t < 0 ? -1 : t, deadline);
        after = r;
        continue;
      }
      store.set(key(r, "n", t), node.toString().getBytes(StandardCharsets.UTF_8));
      if (t == settings.minNodes()) {
        long at = clock.wallNow().toEpochMilli() + settings.lastCallTimeout().toMillis();
        store.set(key(r, "deadline"), Long.toString(at).getBytes(StandardCharsets.UTF_8));
      }
      if (t == settings.maxNodes()) {
        sealAndAssign(r);
      }
      String assigned = awaitRank(r, t, deadline);
      String[] f = assigned.split(" ");
      int myRank = Integer.parseInt(f[0]);
      int world = Integer.parseInt(f[1]);
      long ring = Long.parseLong(f[2]);
      if (myRank < 0) {
        // Sealed without us (we had left after a timeout): try the next round.
        after = r;
        continue;
      }
      synchronized (lock) {
        round = r;
        ticket = t;
        rank = myRank;
        worldSize = world;
        tickets = ring;
        lost.clear();
        logSeen.set(0);
      }
      startHeartbeats(r, t, ring);
      Store prefixed =
          new PrefixStore(RendezvousKeys.of(settings.runId()).roundPrefix(r), store.store());
      RendezvousStoreInfo bootstrap = bootstrap(r, myRank, prefixed, deadline);
      LOG.log(
          Level.INFO,
          "The node ''{0}'' has joined round {1} of the rendezvous ''{2}'' as rank {3} in a world of size {4}.",
          node,
          r,
          settings.runId(),
          myRank,
          world);
      return new RendezvousInfo(prefixed, myRank, world, bootstrap, r);
    }
  }

  /**
   * Where the round's workers meet: rank 0 publishes its host and a free port (in the round's
   * prefix as PyTorch's {@code RendezvousStoreInfo.build} does, and in {@code rR/master}), every
   * other rank waits for {@code rR/master} without holding a connection. Worker rank 0 hosts the
   * workers' store there ({@link #useAgentStore()} is {@code false}).
   */
  private RendezvousStoreInfo bootstrap(long r, int myRank, Store prefixed, long deadline) {
    if (myRank == 0) {
      int port = RendezvousStoreInfo.freePort();
      prefixed.set(RendezvousStoreInfo.MASTER_ADDR_KEY, node.host());
      prefixed.set(RendezvousStoreInfo.MASTER_PORT_KEY, Integer.toString(port));
      store.set(key(r, "master"), (node.host() + " " + port).getBytes(StandardCharsets.UTF_8));
      return new RendezvousStoreInfo(node.host(), port);
    }
    long left = Math.max(deadline - clock.nanoTime(), settings.heartbeatTimeout().toNanos());
    byte[] v = awaitKey(key(r, "master"), Duration.ofNanos(left));
    if (v == null) {
      throw new RendezvousTimeoutException(
          "The node '"
              + node
              + "' did not learn MASTER_ADDR/MASTER_PORT from rank 0 in round "
              + r
              + " of the rendezvous '"
              + settings.runId()
              + "'.");
    }
    String text = new String(v, StandardCharsets.UTF_8);
    int sp = text.lastIndexOf(' ');
    return new RendezvousStoreInfo(text.substring(0, sp), Integer.parseInt(text.substring(sp + 1)));
  }

  /** Fences PyTorch's protocol off this run id, or refuses a run id that already uses it. */
  private void fence() {
    synchronized (lock) {
      if (fenced) {
        return;
      }
    }
    MutableState closed = new MutableState();
    closed.round = FENCE_ROUND;
    closed.closed = true;
    byte[] fence = StateCodec.encode(closed, StateDialect.V2_6);
    if (!store.fenceCompatible(fence)) {
      byte[] existing = store.compatibleState().orElse(null);
      if (existing != null && !isFence(existing)) {
        throw new RendezvousStateException(mixedProtocols(settings.runId(), "pytorch"));
      }
    }
    synchronized (lock) {
      fenced = true;
    }
  }

  /** Whether {@code state} (pickled) is the closed state scalable nodes fence a run id with. */
  static boolean isFence(byte[] state) {
    try {
      MutableState s = StateCodec.decode(state);
      return s.closed && s.round == FENCE_ROUND;
    } catch (RuntimeException e) {
      return false;
    }
  }

  /** The error of a node meeting nodes of the other protocol on its run id. */
  static String mixedProtocols(String runId, String theirs) {
    String mine = theirs.equals("pytorch") ? "scalable" : "pytorch";
    return "The rendezvous '"
        + runId
        + "' is used by nodes of protocol="
        + theirs
        + ", and this node uses protocol="
        + mine
        + "; give every node of the job the same --rdzv-conf protocol (PyTorch nodes speak only"
        + " protocol=pytorch).";
  }

  private void checkClosed() {
    if (store.get(CLOSED) != null) {
      throw new RendezvousClosedException("The rendezvous '" + settings.runId() + "' is closed.");
    }
  }

  /** Waits for round {@code r} to open (or the rendezvous to close), up to the join deadline. */
  private void awaitOpen(long r, long deadline) {
    while (true) {
      checkClosed();
      if (store.add(ROUND, 0) >= r) {
        return;
      }
      long left = deadline - clock.nanoTime();
      if (left <= 0) {
        throw timeout();
      }
      awaitKey(key(r, "open"), Duration.ofNanos(Math.min(left, pollNanos())));
    }
  }

  /**
   * A node that found round {@code r} sealed or full: counted as waiting (or redundant when the
   * round is full), it waits for the next round and leaves the count if it times out.
   */
  private void waitForNextRound(long r, long t, long deadline) {
    ScalableStore.Tally tally = store.tally(key(r, "joined"));
    boolean full = tally.entries() >= settings.maxNodes();
    String counter = key(r, full ? "redundant" : "waiting");
    store.add(counter, 1);
    try {
      awaitOpen(r + 1, deadline);
    } catch (RuntimeException e) {
      store.add(counter, -1);
      throw e;
    }
  }

  private long pollNanos() {
    return Math.max(settings.pollInterval().toNanos(), Duration.ofMillis(100).toNanos()) * 5;
  }

  /** Waits for this ticket's rank; seals at the last call; takes over an assignment left undone. */
  private String awaitRank(long r, long t, long deadline) {
    String rankKey = key(r, "rank", t);
    long lastCall = Long.MIN_VALUE;
    long sealedSeen = Long.MIN_VALUE;
    while (true) {
      long now = clock.nanoTime();
      long step = Math.min(deadline - now, pollNanos());
      if (t >= settings.minNodes() && t < settings.maxNodes()) {
        if (lastCall == Long.MIN_VALUE) {
          byte[] at = store.get(key(r, "deadline"));
          if (at != null) {
            long wall = Long.parseLong(new String(at, StandardCharsets.UTF_8).trim());
            lastCall = now + (wall - clock.wallNow().toEpochMilli()) * 1_000_000L;
          }
        }
        if (lastCall != Long.MIN_VALUE) {
          if (now >= lastCall) {
            sealAndAssign(r);
          } else {
            step = Math.min(step, lastCall - now);
          }
        }
      }
      byte[] v = awaitKey(rankKey, Duration.ofNanos(Math.max(step, 1)));
      if (v != null) {
        return new String(v, StandardCharsets.UTF_8);
      }
      now = clock.nanoTime();
      if (now >= deadline) {
        // As PyTorch's rollback: out of the round (a tombstone the assignment skips), then fail.
        store.set(key(r, "n", t), new byte[0]);
        byte[] late = store.get(rankKey);
        if (late != null) {
          return new String(late, StandardCharsets.UTF_8);
        }
        throw timeout();
      }
      checkClosed();
      if (store.tally(key(r, "joined")).sealed()) {
        if (sealedSeen == Long.MIN_VALUE) {
          sealedSeen = now;
        } else if (now - sealedSeen >= settings.expiry().toNanos()) {
          // The node that sealed did not assign within the keep-alive bound: do it (idempotent).
          assign(r, store.tally(key(r, "joined")).entries());
          sealedSeen = now;
        }
      }
    }
  }

  private RendezvousTimeoutException timeout() {
    return new RendezvousTimeoutException(
        "The node '"
            + node
            + "' has timed out in the rendezvous '"
            + settings.runId()
            + "' (protocol=scalable): no round completed within the join timeout of "
            + settings.joinTimeout().toSeconds()
            + " s.");
  }

  private byte[] awaitKey(String key, Duration timeout) {
    try {
      return store.await(key, timeout);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new RendezvousException("interrupted while waiting in the rendezvous", e);
    }
  }

  /** Seals round {@code r}; the one caller whose seal wins assigns the ranks. */
  private void sealAndAssign(long r) {
    long entries = store.seal(key(r, "joined"));
    if (entries >= 0) {
      assign(r, entries);
    }
  }

  /**
   * Ranks the first {@code min(entries, max)} tickets of round {@code r}: reads their descriptors
   * (waiting a little for those still being written), orders them as the compatible protocol does
   * and writes each its {@code "rank world ring"}; tombstoned or missing tickets get rank -1.
   */
  void assign(long r, long entries) {
    int k = (int) Math.min(entries, settings.maxNodes());
    List<String> keys = new ArrayList<>(k);
    for (int t = 1; t <= k; t++) {
      keys.add(key(r, "n", t));
    }
    List<byte[]> names = getAll(keys);
    long grace = clock.nanoTime() + settings.expiry().toNanos();
    for (int i = 0; i < k; i++) {
      while (names.get(i) == null && clock.nanoTime() < grace) {
        // Took a ticket but has not written its descriptor yet.
        names.set(i, awaitKey(keys.get(i), Duration.ofNanos(grace - clock.nanoTime())));
      }
    }
    List<Integer> live = new ArrayList<>();
    NodeDescriptor[] nodes = new NodeDescriptor[k];
    for (int i = 0; i < k; i++) {
      byte[] n = names.get(i);
      if (n != null && n.length > 0) {
        nodes[i] = NodeDescriptor.parse(new String(n, StandardCharsets.UTF_8)).orElse(null);
        if (nodes[i] != null) {
          live.add(i);
        }
      }
    }
    var order =
        settings.naturalRanks() ? NodeDescriptor.NATURAL_ORDER : NodeDescriptor.PYTORCH_ORDER;
    live.sort((a, b) -> order.compare(nodes[a], nodes[b]));
    int world = live.size();
    byte[][] values = new byte[k][];
    String none = "-1 " + world + " " + k;
    for (int i = 0; i < k; i++) {
      values[i] = none.getBytes(StandardCharsets.UTF_8);
    }
    for (int rk = 0; rk < world; rk++) {
      values[live.get(rk)] = (rk + " " + world + " " + k).getBytes(StandardCharsets.UTF_8);
    }
    store.set(key(r, "size"), Integer.toString(world).getBytes(StandardCharsets.UTF_8));
    List<String> rankKeys = new ArrayList<>(k);
    for (int t = 1; t <= k; t++) {
      rankKeys.add(key(r, "rank", t));
    }
    setAll(rankKeys, List.of(values));
  }

  private List<byte[]> getAll(List<String> keys) {
    List<byte[]> out = new ArrayList<>(keys.size());
    for (int i = 0; i < keys.size(); i += BATCH) {
      out.addAll(store.getAll(keys.subList(i, Math.min(keys.size(), i + BATCH))));
    }
    return out;
  }

  private void setAll(List<String> keys, List<byte[]> values) {
    for (int i = 0; i < keys.size(); i += BATCH) {
      int j = Math.min(keys.size(), i + BATCH);
      store.setAll(keys.subList(i, j), values.subList(i, j));
    }
  }

  /**
   * Claims this node's ticket of round {@code r} as gone (once), logs it, counts it waiting when it
   * comes back, and opens the next round when it was the last participant.
   */
  private void leaveRound(long r, String why, boolean waiting) {
    long t;
    synchronized (lock) {
      t = ticket;
      round = -1;
    }
    if (waiting) {
      store.add(key(r, "waiting"), 1);
    }
    markGone(r, t, node, why);
  }

  /**
   * Records ticket {@code t} of round {@code r} as gone; the claim that empties the round opens the
   * next.
   */
  private boolean markGone(long r, long t, NodeDescriptor who, String why) {
    if (!store.claim(key(r, "gone", t))) {
      return false;
    }
    long i = store.add(key(r, "exited"), 1);
    store.set(key(r, "lost", i), (who + " " + why).getBytes(StandardCharsets.UTF_8));
    byte[] size = store.get(key(r, "size"));
    if (size != null && i >= Long.parseLong(new String(size, StandardCharsets.UTF_8).trim())) {
      // Every participant is gone: the next round opens (exactly one claim gets here).
      store.add(ROUND, 1);
      store.set(key(r + 1, "open"), "1".getBytes(StandardCharsets.UTF_8));
    }
    return true;
  }

  // ---- heartbeats and the neighbour watch

  /** Off in the rule tests, which run one node on a fake clock. */
  boolean heartbeatsEnabled = true;

  private void startHeartbeats(long r, long t, long ring) {
    if (!heartbeatsEnabled) {
      return;
    }
    Thread th =
        Thread.ofVirtual()
            .name("rdzv-scalable-heartbeat-" + node)
            .unstarted(() -> heartbeatLoop(r, t, ring));
    synchronized (lock) {
      heartbeat = th;
    }
    th.start();
  }

  private void stopHeartbeats() {
    Thread th;
    synchronized (lock) {
      th = heartbeat;
      heartbeat = null;
    }
    if (th != null) {
      th.interrupt();
      try {
        th.join(settings.heartbeatTimeout().plusSeconds(1).toMillis());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private void heartbeatLoop(long r, long t, long ring) {
    long watched = -1; // the neighbour's ticket
    long lastBeats = -1;
    long lastChange = 0;
    // The first beat comes at once, from every node of a round that just completed: it costs two
    // requests (its own counter and its neighbour's), not six. The neighbour is the next ticket
    // without asking (a tombstone there is passed over once the keep-alive bound finds it
    // silent), its descriptor is read only if it must be reported, and the lost log, empty when a
    // round starts, from the second beat on.
    boolean first = true;
    try {
      while (!Thread.currentThread().isInterrupted()) {
        try {
          store.beat(key(r, "hb", t));
          if (ring > 1) {
            if (watched < 0) {
              watched = first ? t % ring + 1 : nextLive(r, t, ring);
              lastBeats = -1;
            }
            if (watched >= 0 && watched != t) {
              long b = store.beats(key(r, "hb", watched));
              long now = clock.nanoTime();
              if (b != lastBeats) {
                lastBeats = b;
                lastChange = now;
              } else if (now - lastChange > settings.expiry().toNanos()
                  || store.claimed(key(r, "gone", watched))) {
                // A tombstone (a ticket that left before the assignment) never beats and is no
                // participant: it is passed over, not reported.
                if (!store.claimed(key(r, "gone", watched)) && ranked(r, watched)) {
                  markGone(r, watched, descriptor(r, watched), "dead");
                }
                long next = nextLive(r, watched, ring);
                watched = next == t ? -2 : next;
                lastBeats = -1;
              }
            }
          }
          if (!first) {
            readLostLog(r);
          }
          first = false;
        } catch (RendezvousException | org.rdzv.api.StoreException e) {
          if (Thread.currentThread().isInterrupted() || handlerClosed) {
            return; // stopped while a store call was in flight
          }
          LOG.log(
              Level.WARNING,
              "The node ''{0}'' has failed to send a keep-alive heartbeat to the rendezvous ''{1}'' ({2}).",
              node,
              settings.runId(),
              e.getMessage());
        }
        clock.sleep(settings.keepAliveInterval());
      }
    } catch (InterruptedException e) {
      // stopped
    }
  }

  /** Whether ticket {@code t} of round {@code r} was given a rank (not a tombstone). */
  private boolean ranked(long r, long t) {
    byte[] v = store.get(key(r, "rank", t));
    return v != null && !new String(v, StandardCharsets.UTF_8).startsWith("-");
  }

  /** The descriptor of ticket {@code t} of round {@code r}, or null if it has none. */
  private NodeDescriptor descriptor(long r, long t) {
    byte[] n = store.get(key(r, "n", t));
    return n == null
        ? null
        : NodeDescriptor.parse(new String(n, StandardCharsets.UTF_8)).orElse(null);
  }

  /** The next ticket after {@code from} (cyclically) that has a rank and is not gone. */
  private long nextLive(long r, long from, long ring) {
    long c = from;
    for (long step = 0; step < ring; step++) {
      c = c % ring + 1;
      if (c == from) {
        break;
      }
      if (ranked(r, c) && !store.claimed(key(r, "gone", c))) {
        return c;
      }
    }
    return from;
  }

  /** Reads new entries of the round's lost log and tells the listeners. */
  private void readLostLog(long r) {
    long count = store.add(key(r, "exited"), 0);
    long seen = logSeen.get();
    if (count <= seen) {
      return;
    }
    long upTo = Math.min(count, seen + LOG_BATCH);
    List<String> keys = new ArrayList<>();
    for (long i = seen + 1; i <= upTo; i++) {
      keys.add(key(r, "lost", i));
    }
    List<byte[]> entries = store.getAll(keys);
    Set<NodeDescriptor> fresh = new HashSet<>();
    long done = seen;
    for (byte[] e : entries) {
      if (e == null) {
        break; // the claimer has not logged it yet
      }
      done++;
      String text = new String(e, StandardCharsets.UTF_8);
      int sp = text.lastIndexOf(' ');
      NodeDescriptor.parse(sp > 0 ? text.substring(0, sp) : text)
          .filter(d -> !d.equals(node))
          .ifPresent(fresh::add);
    }
    logSeen.set(done);
    Set<NodeDescriptor> added = new LinkedHashSet<>();
    synchronized (lock) {
      if (round != r) {
        return;
      }
      for (NodeDescriptor d : fresh) {
        if (lost.add(d)) {
          added.add(d);
        }
      }
    }
    if (!added.isEmpty()) {
      LOG.log(
          Level.WARNING,
          "rendezvous ''{0}'' round {1}: participants {2} stopped heartbeating or left",
          settings.runId(),
          String.valueOf(r),
          added);
      Set<String> names = new LinkedHashSet<>();
      added.forEach(d -> names.add(d.toString()));
      for (Listener l : listeners) {
        try {
          l.participantsLost(r, Set.copyOf(names));
        } catch (RuntimeException ex) {
          LOG.log(Level.WARNING, "a rendezvous listener failed", ex);
        }
      }
    }
  }

  // ---- the rest of the contract

  @Override
  public boolean isClosed() {
    return store.get(CLOSED) != null;
  }

  @Override
  public void setClosed() {
    store.set(CLOSED, "1".getBytes(StandardCharsets.UTF_8));
    // Wake nodes waiting for the next round; they find it closed.
    long r = store.add(ROUND, 0);
    store.set(key(r + 1, "open"), "closed".getBytes(StandardCharsets.UTF_8));
  }

  @Override
  public int numNodesWaiting() {
    long r;
    synchronized (lock) {
      r = round;
    }
    if (r < 0) {
      return 0;
    }
    readLostLog(r);
    return (int) Math.max(0, store.add(key(r, "waiting"), 0));
  }

  @Override
  public boolean shutdown() {
    stopHeartbeats();
    try {
      setClosed();
      return true;
    } catch (RendezvousException | org.rdzv.api.StoreException e) {
      LOG.log(
          Level.WARNING, "The node ''{0}'' cannot close the rendezvous: {1}", node, e.getMessage());
      return false;
    }
  }

  @Override
  public void leave() {
    stopHeartbeats();
    long r;
    synchronized (lock) {
      r = round;
    }
    if (r >= 0) {
      leaveRound(r, "left", false);
    }
  }

  @Override
  public StateSnapshot state() {
    synchronized (lock) {
      Map<NodeDescriptor, Integer> participants = round >= 0 ? Map.of(node, rank) : Map.of();
      return new StateSnapshot(
          Math.max(round, 0),
          round >= 0,
          null,
          isClosed(),
          participants,
          Set.of(),
          Set.of(),
          Map.of(),
          null);
    }
  }

  @Override
  public Set<NodeDescriptor> lostParticipants() {
    synchronized (lock) {
      return Set.copyOf(lost);
    }
  }

  @Override
  public void addListener(Listener listener) {
    listeners.add(listener);
  }

  @Override
  public void removeListener(Listener listener) {
    listeners.remove(listener);
  }

  /** The world size of the round this node is in, or 0. */
  int worldSize() {
    synchronized (lock) {
      return round >= 0 ? worldSize : 0;
    }
  }

  long tickets() {
    synchronized (lock) {
      return tickets;
    }
  }

  @Override
  public void close() {
    if (handlerClosed) {
      return;
    }
    handlerClosed = true;
    stopHeartbeats();
    try {
      store.close();
      if (owned != null) {
        owned.close();
      }
    } catch (Exception e) {
      LOG.log(Level.WARNING, "closing the scalable rendezvous handler failed", e);
    }
  }
}
