package org.rdzv.store;

import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.rdzv.api.StoreException;

/**
 * The {@link TcpStoreServer}: one selector thread accepts, reads, executes requests against the
 * {@link StoreState} and writes replies. Executing on the I/O thread needs no locks, and each
 * request is a few map operations, so this is faster than handing work to other threads.
 *
 * <p>Fairness: every turn of the loop reads at most {@link #READ_CHUNK} bytes from each ready
 * connection and executes what they complete (the decoder hands multi-key requests over key by
 * key), then runs one slice of deferred work (waits left behind), then writes. So a connection that
 * sends a huge request costs everyone else at most one chunk's worth of work per turn.
 *
 * <p>Memory: see {@link MemoryBudget}. Before a request or key that makes a reply (or a parked
 * wait) is executed, the connection must have room for it, within its queued-reply limit and the
 * budget; if not, the decoder keeps the item, the rest of the chunk is stashed and the connection
 * is not read from until its replies drain or memory is given back. A read never takes more bytes
 * than the connection may hold.
 */
final class StoreServer implements TcpStoreServer {
  private static final System.Logger LOG = System.getLogger(TcpStoreServer.class.getName());

  /** The most bytes read from one connection per turn. */
  static final int READ_CHUNK = 16 * 1024;

  private static final int ACCEPTS_PER_TURN = 256;
  private static final long BACKOFF_MIN_NANOS = TimeUnit.MILLISECONDS.toNanos(50);
  private static final long BACKOFF_MAX_NANOS = TimeUnit.SECONDS.toNanos(1);
  private static final long THROTTLE_WINDOW_NANOS = TimeUnit.SECONDS.toNanos(10);
  private static final ByteBuffer NOTHING = ByteBuffer.allocate(0);

  static {
    // Loaded now, not on the first error: with no descriptor left, a class in a directory cannot
    // be read.
    Class<?>[] preload = {
      ProtocolException.class,
      ProtocolException.Reason.class,
      StoreState.Waiter.class,
      StoreState.WaiterList.class,
      OutputQueue.class,
      Stoll.class,
      Request.class,
      Command.class,
      Family.class,
      Wire.class,
      LastWords.class,
      MemoryBudget.class,
      StoreMetrics.class,
      StoreMetrics.Snapshot.class,
      Pause.class,
      Throttle.class,
      Connection.class,
    };
    for (Class<?> c : preload) {
      try {
        Class.forName(c.getName(), true, c.getClassLoader());
      } catch (ClassNotFoundException e) {
        throw new ExceptionInInitializerError(e);
      }
    }
  }

  /** Why a connection is not read from. */
  enum Pause {
    NONE,
    /** Its queued replies reached the limit; until it reads half of them. */
    REPLIES,
    /** It needs memory the budget does not have; until some is given back. */
    MEMORY
  }

  /**
   * Logs the first few events of a kind per window and counts the rest, so that an attack of a
   * thousand connections makes a few lines and a summary, not a thousand lines.
   */
  static final class Throttle {
    private static final int LINES = 5;
    private final String what;
    private long windowStart;
    private int logged;
    private int suppressed;

    Throttle(String what) {
      this.what = what;
    }

    /** Whether to log this occurrence. */
    boolean allow(long now) {
      if (now - windowStart > THROTTLE_WINDOW_NANOS) {
        flush(now);
      }
      if (logged < LINES) {
        logged++;
        return true;
      }
      suppressed++;
      return false;
    }

    /** Logs how many were not logged, once their window is over. */
    void flush(long now) {
      if (suppressed > 0 && now - windowStart > THROTTLE_WINDOW_NANOS) {
        LOG.log(
            Level.WARNING,
            "{0} more {1} in the last {2} s (not logged one by one)",
            suppressed,
            what,
            TimeUnit.NANOSECONDS.toSeconds(now - windowStart));
      }
      if (now - windowStart > THROTTLE_WINDOW_NANOS) {
        windowStart = now;
        logged = 0;
        suppressed = 0;
      }
    }
  }

  private final TcpStoreServerOptions options;
  private final Limits limits;
  private final Selector selector;
  private final ServerSocketChannel listener;
  private final SelectionKey listenerKey;
  private final InetSocketAddress address;
  private final String where;
  private final MemoryBudget budget;
  private final StoreState state;
  private final ByteBuffer readBuffer = ByteBuffer.allocate(READ_CHUNK);
  private final ArrayList<Connection> dirty = new ArrayList<>();
  private final ArrayList<Connection> all = new ArrayList<>();
  private final ArrayDeque<Connection> resumed = new ArrayDeque<>();
  private final ArrayDeque<Connection> waitingForMemory = new ArrayDeque<>();
  private final CompletableFuture<Void> termination = new CompletableFuture<>();
  private final StoreMetrics.Snapshot snapshot = new StoreMetrics.Snapshot();
  private final StoreMetrics metrics;
  private final LastWords lastWords;
  private final Throttle[] closeThrottles = new Throttle[ProtocolException.Reason.values().length];
  private final Throttle refusedThrottle = new Throttle("connections refused on accept");
  private final Throttle acceptThrottle = new Throttle("failures to accept (descriptors?)");
  private boolean acceptFailureLogged;
  private final long frameIdleNanos;
  private final long drainNanos;
  private final long sweepNanos;
  private final Thread thread;
  private volatile boolean running = true;
  private volatile Throwable failure;
  private long nextSweep;
  private long nextConnectionId;
  private int pausedForReplies;

  /** Accept back-off after a failed accept (out of descriptors): 0 when accepting. */
  private long acceptResumeAt;

  private long acceptBackoff;
  private long acceptFailingSince;
  private int acceptFailures;

  private StoreServer(TcpStoreServerOptions options) throws IOException {
    this.options = options;
    this.limits = options.limits();
    this.budget = new MemoryBudget(options.memoryBudget());
    this.state = new StoreState(limits, budget);
    this.frameIdleNanos = options.frameIdleTimeout().toNanos();
    this.drainNanos = options.replyDrainTimeout().toNanos();
    this.sweepNanos =
        Math.clamp(
            Math.min(frameIdleNanos, drainNanos) / 8,
            TimeUnit.MILLISECONDS.toNanos(10),
            TimeUnit.SECONDS.toNanos(1));
    for (ProtocolException.Reason r : ProtocolException.Reason.values()) {
      closeThrottles[r.ordinal()] =
          new Throttle("connections closed (" + r.label().replace('_', ' ') + ")");
    }
    this.selector = Selector.open();
    this.listener = ServerSocketChannel.open();
    try {
      listener.setOption(StandardSocketOptions.SO_REUSEADDR, true);
      InetSocketAddress bind =
          options.host().isEmpty()
              ? new InetSocketAddress(options.port())
              : new InetSocketAddress(options.host(), options.port());
      if (bind.isUnresolved()) {
        throw new IOException("cannot resolve host " + options.host());
      }
      listener.bind(bind, options.backlog());
      listener.configureBlocking(false);
      listenerKey = listener.register(selector, SelectionKey.OP_ACCEPT);
      address = (InetSocketAddress) listener.getLocalAddress();
    } catch (IOException | RuntimeException e) {
      listener.close();
      selector.close();
      throw e;
    }
    this.where = "TCPStore server on " + address;
    this.lastWords = new LastWords(where);
    this.metrics = new StoreMetrics(options.meterRegistry(), address.getPort(), snapshot);
    publish();
    thread =
        Thread.ofPlatform().name("rdzv-store-server:" + address.getPort()).unstarted(this::loop);
  }

  static StoreServer start(TcpStoreServerOptions options) {
    StoreServer server;
    try {
      server = new StoreServer(options);
    } catch (IOException e) {
      String where = (options.host().isEmpty() ? "[::]" : options.host()) + ":" + options.port();
      throw new StoreException(
          "The server socket has failed to listen on " + where + ": " + e.getMessage(), e);
    }
    server.thread.start();
    LOG.log(Level.DEBUG, "TCPStore server listening on {0}", server.address);
    return server;
  }

  @Override
  public int port() {
    return address.getPort();
  }

  @Override
  public InetSocketAddress address() {
    return address;
  }

  @Override
  public int connectionCount() {
    return snapshot.connections;
  }

  @Override
  public long numKeys() {
    return snapshot.keys;
  }

  @Override
  public int pendingWaits() {
    return snapshot.waits;
  }

  @Override
  public boolean isRunning() {
    return running && thread.isAlive();
  }

  @Override
  public boolean awaitTermination(Duration timeout) throws InterruptedException {
    try {
      termination.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
      return true;
    } catch (ExecutionException e) {
      return true;
    } catch (TimeoutException e) {
      return false;
    }
  }

  @Override
  public CompletionStage<Void> termination() {
    return termination.minimalCompletionStage();
  }

  @Override
  public Optional<Throwable> failure() {
    return Optional.ofNullable(failure);
  }

  @Override
  public void close() {
    running = false;
    selector.wakeup();
    if (Thread.currentThread() != thread) {
      boolean interrupted = false;
      while (true) {
        try {
          if (!thread.isAlive() && thread.getState() != Thread.State.NEW) {
            break;
          }
          thread.join();
          break;
        } catch (InterruptedException e) {
          interrupted = true;
        }
      }
      if (interrupted) {
        Thread.currentThread().interrupt();
      }
    }
  }

  @Override
  public String toString() {
    return "TcpStoreServer(" + address + ")";
  }

  // ---------------------------------------------------------------- event loop

  private void loop() {
    Throwable fatal = null;
    try {
      nextSweep = System.nanoTime() + sweepNanos;
      while (running) {
        long timeout = pollTimeoutMillis(System.nanoTime());
        if (timeout == 0) {
          selector.selectNow(this::onSelected);
        } else {
          selector.select(this::onSelected, timeout);
        }
        turn();
      }
    } catch (Throwable t) {
      // Whatever ends the loop (OutOfMemoryError included) is said in one line, and the owner
      // learns it from termination().
      fatal = t;
      lastWords.say(t, all.size());
    } finally {
      shutdown(fatal);
    }
  }

  /** 0: poll without blocking (work is waiting); else how long select may block, in ms. */
  private long pollTimeoutMillis(long now) {
    if (!resumed.isEmpty() || state.hasBackgroundWork()) {
      return 0;
    }
    long until = nextSweep - now;
    if (acceptResumeAt != 0) {
      until = Math.min(until, acceptResumeAt - now);
    }
    return until <= 0 ? 0 : Math.max(1, TimeUnit.NANOSECONDS.toMillis(until));
  }

  private void turn() {
    for (int n = resumed.size(); n > 0; n--) {
      Connection c = resumed.poll();
      if (!c.closed) {
        try {
          resume(c);
        } catch (RuntimeException e) {
          internalError(c, e);
        }
      }
    }
    if (state.hasBackgroundWork()) {
      state.runBackgroundWork(StoreState.SLICE);
    }
    flushDirty();
    long now = System.nanoTime();
    if (acceptResumeAt != 0 && now - acceptResumeAt >= 0) {
      acceptResumeAt = 0;
      listenerKey.interestOps(SelectionKey.OP_ACCEPT);
    }
    if (now - nextSweep >= 0) {
      sweep(now);
      nextSweep = now + sweepNanos;
    }
    if (budget.takeFreed() && !waitingForMemory.isEmpty()) {
      // Memory was given back: every connection waiting for some tries again (next turn).
      while (!waitingForMemory.isEmpty()) {
        Connection c = waitingForMemory.poll();
        if (!c.closed && c.pause == Pause.MEMORY) {
          c.pause = Pause.NONE;
          resumed.add(c);
        }
      }
    }
    publish();
  }

  /** Publishes the gauges' values (read by other threads). */
  private void publish() {
    StoreMetrics.Snapshot s = snapshot;
    s.connections = all.size();
    s.keys = state.numKeys();
    s.waits = state.pendingWaits();
    s.pausedForReplies = pausedForReplies;
    s.pausedForMemory = waitingForMemory.size();
    s.memoryUsed = budget.used();
    s.memoryData = budget.data();
    s.memoryFrames = budget.frames();
    s.memoryReplies = budget.replies();
    s.memoryWaits = budget.waits();
    s.memoryBudget = budget.limit();
  }

  /**
   * Closes everything and completes {@link #termination}, whatever fails on the way: after an
   * OutOfMemoryError each step may fail too, and the owner must still learn that the server is
   * gone. After a failure the data is dropped (nobody can reach it any more), so that the owner has
   * memory to report with.
   */
  private void shutdown(Throwable fatal) {
    running = false;
    failure = fatal;
    try {
      for (int i = all.size() - 1; i >= 0; i--) {
        Connection c = all.get(i);
        c.closed = true;
        try {
          c.channel.close();
        } catch (IOException | RuntimeException e) {
          // closing anyway
        }
      }
      all.clear();
      dirty.clear();
      resumed.clear();
      waitingForMemory.clear();
      if (fatal != null) {
        state.discard();
      }
      try {
        listener.close();
      } catch (IOException e) {
        LOG.log(Level.DEBUG, "closing the listener", e);
      }
      try {
        selector.close();
      } catch (IOException e) {
        LOG.log(Level.DEBUG, "closing the selector", e);
      }
      snapshot.connections = 0;
      metrics.close();
    } catch (Throwable t) {
      LOG.log(Level.DEBUG, "stopping " + where, t);
    } finally {
      if (fatal == null) {
        termination.complete(null);
      } else {
        termination.completeExceptionally(fatal);
      }
    }
    LOG.log(Level.DEBUG, "{0} stopped", where);
  }

  private void onSelected(SelectionKey key) {
    if (key == listenerKey) {
      acceptSome();
      return;
    }
    Connection c = (Connection) key.attachment();
    if (!key.isValid() || c.closed) {
      return;
    }
    try {
      int ready = key.readyOps();
      if ((ready & SelectionKey.OP_WRITE) != 0) {
        flush(c);
      }
      if (!c.closed && (ready & SelectionKey.OP_READ) != 0 && c.readable()) {
        readOnce(c);
      }
    } catch (RuntimeException e) {
      internalError(c, e);
    }
  }

  /** A bug must cost one connection, never the server. */
  private void internalError(Connection c, RuntimeException e) {
    LOG.log(Level.ERROR, where + ": internal error on connection " + c.describe(), e);
    close(c, Level.ERROR, "internal error: " + e);
  }

  // ---------------------------------------------------------------- accepting

  private void acceptSome() {
    for (int i = 0; i < ACCEPTS_PER_TURN; i++) {
      SocketChannel channel;
      try {
        channel = listener.accept();
      } catch (IOException e) {
        acceptFailed(e);
        return;
      }
      if (channel == null) {
        return;
      }
      acceptWorked();
      if (all.size() >= options.maxConnections()) {
        metrics.rejectedAtLimit();
        refuse(channel, all.size() + " connections are open, the limit (--max-connections)");
        continue;
      }
      if (!budget.admit()) {
        metrics.rejectedForMemory();
        refuse(
            channel,
            "no memory budget is left for another connection ("
                + all.size()
                + " open, "
                + budget.used()
                + " of "
                + budget.limit()
                + " bytes used; --memory-budget)");
        continue;
      }
      try {
        channel.configureBlocking(false);
        channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
        Connection c = new Connection(channel, ++nextConnectionId);
        c.key = channel.register(selector, SelectionKey.OP_READ, c);
        c.lastInput = System.nanoTime();
        all.add(c);
        c.index = all.size() - 1;
        metrics.accepted();
      } catch (IOException e) {
        budget.adjust(-MemoryBudget.ALLOWANCE);
        LOG.log(Level.DEBUG, "setting up an accepted connection failed", e);
        try {
          channel.close();
        } catch (IOException ignored) {
          // already failing
        }
      }
    }
  }

  private void refuse(SocketChannel channel, String why) {
    if (refusedThrottle.allow(System.nanoTime())) {
      String from;
      try {
        from = String.valueOf(channel.getRemoteAddress());
      } catch (IOException e) {
        from = "?";
      }
      LOG.log(Level.WARNING, "{0}: refused a connection from {1}: {2}", where, from, why);
    }
    try {
      channel.close();
    } catch (IOException e) {
      LOG.log(Level.DEBUG, "closing a refused connection", e);
    }
  }

  /** Typically EMFILE: stop accepting for a while instead of spinning on the listener. */
  private void acceptFailed(IOException e) {
    long now = System.nanoTime();
    metrics.acceptFailed();
    acceptFailures++;
    if (acceptFailingSince == 0) {
      acceptFailingSince = now;
      acceptBackoff = BACKOFF_MIN_NANOS;
      acceptFailureLogged = acceptThrottle.allow(now);
      if (acceptFailureLogged)
        LOG.log(
            Level.WARNING,
            "{0} cannot accept connections: {1}; it keeps serving its {2} connections and tries again"
                + " (if descriptors ran out, raise the limit: ulimit -n)",
            where,
            e.getMessage(),
            all.size());
    } else {
      acceptBackoff = Math.min(BACKOFF_MAX_NANOS, acceptBackoff * 2);
    }
    listenerKey.interestOps(0);
    acceptResumeAt = now + acceptBackoff;
  }

  private void acceptWorked() {
    if (acceptFailingSince != 0) {
      if (acceptFailureLogged)
        LOG.log(
            Level.INFO,
            "{0} accepts connections again, after {1} failed attempts in {2} ms",
            where,
            acceptFailures,
            TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - acceptFailingSince));
      acceptFailingSince = 0;
      acceptFailures = 0;
    }
  }

  // ---------------------------------------------------------------- reading and executing

  private void readOnce(Connection c) {
    long room = c.readRoom();
    if (room <= 0) {
      c.pauseFor(Pause.MEMORY);
      return;
    }
    readBuffer.clear();
    readBuffer.limit((int) Math.min(READ_CHUNK, room));
    int n;
    try {
      n = c.channel.read(readBuffer);
    } catch (IOException e) {
      close(c, Level.DEBUG, "read failed: " + e.getMessage());
      return;
    }
    if (n < 0) {
      close(c, Level.DEBUG, "closed by the peer");
      return;
    }
    if (n == 0) {
      return;
    }
    c.lastInput = System.nanoTime();
    metrics.received(n);
    readBuffer.flip();
    process(c, readBuffer);
  }

  /** Decodes and executes {@code input}; what is left when the connection pauses is stashed. */
  private void process(Connection c, ByteBuffer input) {
    try {
      c.decoder.feed(input, c);
    } catch (ProtocolException e) {
      reject(c, e);
      return;
    }
    if (c.closed) {
      return;
    }
    if (input == c.stash) {
      if (!input.hasRemaining()) {
        c.stash = null;
      }
    } else if (input.hasRemaining()) {
      ByteBuffer copy = ByteBuffer.allocate(input.remaining());
      copy.put(input).flip();
      c.stash = copy;
    }
    c.account();
    if (c.dirty) {
      // Answer now rather than after the whole turn: the client is waiting for it.
      c.dirty = false;
      flush(c);
    } else {
      c.updateInterest();
    }
  }

  /** A paused connection may go on: its kept item and stash first, then reading again. */
  private void resume(Connection c) {
    if (c.pause != Pause.NONE) {
      return;
    }
    process(c, c.stash != null ? c.stash : NOTHING);
  }

  private void flushDirty() {
    if (dirty.isEmpty()) {
      return;
    }
    for (int i = 0; i < dirty.size(); i++) {
      Connection c = dirty.get(i);
      if (c.dirty) {
        c.dirty = false;
        if (!c.closed) {
          try {
            flush(c);
          } catch (RuntimeException e) {
            internalError(c, e);
          }
        }
      }
    }
    dirty.clear();
  }

  private void flush(Connection c) {
    long before = c.out.writtenBytes();
    try {
      c.out.writeTo(c.channel);
    } catch (IOException e) {
      close(c, Level.DEBUG, "write failed: " + e.getMessage());
      return;
    } finally {
      metrics.sent(c.out.writtenBytes() - before);
    }
    if (c.pause == Pause.REPLIES && c.out.pendingBytes() <= options.maxQueuedReplyBytes() / 2) {
      c.pause = Pause.NONE;
      pausedForReplies--;
      resumed.add(c);
    }
    c.account();
    c.updateInterest();
  }

  // ---------------------------------------------------------------- timeouts and closing

  /** Closes connections that left a frame half-sent, or their replies unread, for too long. */
  private void sweep(long now) {
    for (int i = all.size() - 1; i >= 0; i--) {
      if (i >= all.size()) {
        continue;
      }
      Connection c = all.get(i);
      if (c.pause == Pause.REPLIES) {
        if (now - c.pausedSince > drainNanos) {
          reject(
              c,
              new ProtocolException(
                  ProtocolException.Reason.DRAIN_TIMEOUT,
                  "it has not read its replies for "
                      + seconds(now - c.pausedSince)
                      + " ("
                      + c.out.pendingBytes()
                      + " bytes queued; --reply-drain-timeout)"));
        }
      } else if (c.decoder.midFrame() && now - c.lastInput > frameIdleNanos) {
        reject(
            c,
            new ProtocolException(
                ProtocolException.Reason.FRAME_TIMEOUT,
                "it left a request half-sent for "
                    + seconds(now - c.lastInput)
                    + " ("
                    + c.decoder.pendingBytes()
                    + " bytes of it received; --frame-idle-timeout)"));
      }
    }
    refusedThrottle.flush(now);
    acceptThrottle.flush(now);
    for (Throttle t : closeThrottles) {
      t.flush(now);
    }
  }

  private static String seconds(long nanos) {
    return String.format("%.1f s", nanos / 1e9);
  }

  private void reject(Connection c, ProtocolException e) {
    metrics.rejected(e.reason());
    Level level =
        closeThrottles[e.reason().ordinal()].allow(System.nanoTime()) ? Level.WARNING : Level.DEBUG;
    close(c, level, e.getMessage());
  }

  private void close(Connection c, Level level, String reason) {
    if (c.closed) {
      return;
    }
    if (LOG.isLoggable(level)) {
      LOG.log(level, "{0}: closing connection {1}: {2}", where, c.describe(), reason);
    }
    c.closed = true;
    if (c.pause == Pause.REPLIES) {
      pausedForReplies--;
    }
    c.pause = Pause.NONE;
    state.disconnected(c);
    if (c.key != null) {
      c.key.cancel();
    }
    try {
      c.channel.close();
    } catch (IOException e) {
      LOG.log(Level.DEBUG, "closing a connection", e);
    }
    c.stash = null;
    c.out.discard();
    c.account();
    // O(1) removal: move the last connection into the hole.
    int i = c.index;
    Connection last = all.remove(all.size() - 1);
    if (last != c) {
      all.set(i, last);
      last.index = i;
    }
    if (acceptResumeAt != 0) {
      // A descriptor is free again: try accepting now rather than at the end of the back-off.
      acceptResumeAt = System.nanoTime();
    }
  }

  /** One client connection: a {@link Session} with its channel, decoder and accounting. */
  private final class Connection extends Session implements RequestDecoder.StreamingSink {
    final SocketChannel channel;
    RequestDecoder decoder = new RequestDecoder(limits);
    final long id;
    SelectionKey key;
    int index;
    boolean closed;
    Pause pause = Pause.NONE;
    long pausedSince;
    long lastInput;

    /** Bytes read and not yet decoded because the connection paused. */
    ByteBuffer stash;

    /** Bytes of wait and watch registrations. */
    long registrations;

    /** What this connection counts in the budget now, and by kind. */
    long accounted = MemoryBudget.ALLOWANCE;

    long accountedFrames;
    long accountedReplies;
    long accountedWaits;

    Connection(SocketChannel channel, long id) {
      super(null);
      this.channel = channel;
      this.id = id;
    }

    boolean readable() {
      return pause == Pause.NONE && stash == null && !decoder.hasRetained();
    }

    private long frames() {
      return closed ? 0 : decoder.heldBytes() + (stash == null ? 0 : stash.capacity());
    }

    private long held() {
      return frames() + out.pendingBytes() + registrations;
    }

    /** Brings the budget up to date with what this connection holds. */
    void account() {
      long frames = frames();
      long replies = out.pendingBytes();
      long want =
          closed
              ? registrations
              : Math.max(MemoryBudget.ALLOWANCE, frames + replies + registrations);
      if (want != accounted) {
        budget.adjust(want - accounted);
        accounted = want;
      }
      if (frames != accountedFrames
          || replies != accountedReplies
          || registrations != accountedWaits) {
        budget.held(
            frames - accountedFrames, replies - accountedReplies, registrations - accountedWaits);
        accountedFrames = frames;
        accountedReplies = replies;
        accountedWaits = registrations;
      }
    }

    /** Whether this connection may hold {@code bytes} more. */
    private boolean mayTake(long bytes) {
      long extra = Math.max(MemoryBudget.ALLOWANCE, held() + bytes) - accounted;
      return extra <= 0 || extra <= budget.connectionRoom();
    }

    /** The most bytes a read may take: what this connection may still hold. */
    long readRoom() {
      return accounted - held() + Math.max(0, budget.connectionRoom());
    }

    @Override
    public boolean reserve(long bytes) throws ProtocolException {
      if (bytes > MemoryBudget.ALLOWANCE + budget.connectionShare()) {
        throw new ProtocolException(
            ProtocolException.Reason.MEMORY,
            "a value of "
                + bytes
                + " bytes cannot fit in the connections' half of the memory budget of "
                + budget.limit()
                + " bytes (--memory-budget)");
      }
      if (mayTake(bytes)) {
        return true;
      }
      pauseFor(Pause.MEMORY);
      return false;
    }

    /** Whether a reply of {@code bytes} may be queued now; if not, pauses. */
    private boolean mayReply(long bytes) {
      if (out.pendingBytes() >= options.maxQueuedReplyBytes()) {
        pauseFor(Pause.REPLIES);
        return false;
      }
      if (!mayTake(bytes)) {
        pauseFor(Pause.MEMORY);
        return false;
      }
      return true;
    }

    void pauseFor(Pause reason) {
      if (pause != Pause.NONE) {
        return;
      }
      pause = reason;
      pausedSince = System.nanoTime();
      if (reason == Pause.REPLIES) {
        pausedForReplies++;
      } else {
        waitingForMemory.add(this);
      }
    }

    void updateInterest() {
      if (closed || !key.isValid()) {
        return;
      }
      int ops = readable() ? SelectionKey.OP_READ : 0;
      if (!out.isEmpty()) {
        ops |= SelectionKey.OP_WRITE;
      }
      if (key.interestOps() != ops) {
        key.interestOps(ops);
      }
    }

    @Override
    public boolean offer(Request request) throws ProtocolException {
      if (family == null) {
        family = decoder.family();
      }
      switch (request.command()) {
        case SET, APPEND, QUEUE_PUSH -> {}
        default -> {
          if (!mayReply(state.replyBytes(request))) {
            return false;
          }
        }
      }
      metrics.request(request.command());
      state.execute(this, request);
      return true;
    }

    @Override
    public void begin(Command command, int count) {
      if (family == null) {
        family = decoder.family();
      }
      metrics.request(command);
      state.begin(this, command);
    }

    @Override
    public boolean element(String k, byte[] value) throws ProtocolException {
      switch (multi) {
        case MULTI_GET -> {
          if (!mayReply(state.elementBytes(this, k))) {
            return false;
          }
        }
        case WAIT -> {
          long bytes = state.elementBytes(this, k);
          if (bytes > 0 && !mayTake(bytes)) {
            pauseFor(Pause.MEMORY);
            return false;
          }
        }
        default -> {}
      }
      state.element(this, k, value);
      return true;
    }

    @Override
    public void end() {
      state.end(this);
    }

    @Override
    public boolean stopped() {
      return closed;
    }

    @Override
    void outputQueued() {
      if (!dirty) {
        dirty = true;
        StoreServer.this.dirty.add(this);
      }
    }

    @Override
    void charge(long bytes) {
      registrations += bytes;
      account();
    }

    @Override
    void release(long bytes) {
      registrations -= bytes;
      account();
    }

    @Override
    String describe() {
      String remote;
      try {
        remote = String.valueOf(channel.getRemoteAddress());
      } catch (IOException | RuntimeException e) {
        remote = "?";
      }
      Family f = decoder.family();
      return "#"
          + id
          + " from "
          + remote
          + " ("
          + (f == null ? "no bytes yet" : f + " protocol")
          + ")";
    }
  }
}
