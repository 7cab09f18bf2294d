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
import java.util.ArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.rdzv.api.StoreException;

/**
 * The {@link TcpStoreServer}: one selector thread accepts, reads, executes requests against the
 * {@link StoreState} and writes replies. Executing on the I/O thread needs no locks, and each
 * request is a few map operations, so this is faster than handing work to other threads.
 */
final class StoreServer implements TcpStoreServer {
  private static final System.Logger LOG = System.getLogger(TcpStoreServer.class.getName());
  private static final int READ_BUFFER = 256 * 1024;

  /** Stop reading from a connection that has this much unsent output (it does not read). */
  private static final long HIGH_WATER = 16L * 1024 * 1024;

  private final TcpStoreServerOptions options;
  private final Limits limits;
  private final Selector selector;
  private final ServerSocketChannel listener;
  private final SelectionKey listenerKey;
  private final InetSocketAddress address;
  private final StoreState state = new StoreState();
  private final ByteBuffer readBuffer = ByteBuffer.allocateDirect(READ_BUFFER);
  private final ArrayList<Connection> dirty = new ArrayList<>();
  private final ArrayList<Connection> all = new ArrayList<>();
  private final CountDownLatch terminated = new CountDownLatch(1);
  private final Thread thread;
  private volatile boolean running = true;
  private volatile int connectionCount;
  private volatile int keyCount;
  private volatile int pendingWaits;
  private long acceptPausedUntil;
  private long nextConnectionId;

  private StoreServer(TcpStoreServerOptions options) throws IOException {
    this.options = options;
    this.limits = options.limits();
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
    return connectionCount;
  }

  @Override
  public long numKeys() {
    return keyCount;
  }

  @Override
  public int pendingWaits() {
    return pendingWaits;
  }

  @Override
  public boolean isRunning() {
    return running && thread.isAlive();
  }

  @Override
  public boolean awaitTermination(Duration timeout) throws InterruptedException {
    return terminated.await(timeout.toNanos(), TimeUnit.NANOSECONDS);
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
    try {
      while (running) {
        long timeoutMillis = 0;
        if (acceptPausedUntil != 0) {
          long left = acceptPausedUntil - System.nanoTime();
          if (left <= 0) {
            acceptPausedUntil = 0;
            listenerKey.interestOps(SelectionKey.OP_ACCEPT);
          } else {
            timeoutMillis = Math.max(1, TimeUnit.NANOSECONDS.toMillis(left));
          }
        }
        selector.select(this::onSelected, timeoutMillis);
        flushDirty();
        keyCount = state.numKeys();
        pendingWaits = state.pendingWaits();
      }
    } catch (IOException | RuntimeException | Error e) {
      LOG.log(Level.ERROR, "TCPStore server on " + address + " failed", e);
    } finally {
      shutdown();
    }
  }

  private void shutdown() {
    running = false;
    for (Connection c : new ArrayList<>(all)) {
      closeQuietly(c);
    }
    all.clear();
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
    connectionCount = 0;
    terminated.countDown();
    LOG.log(Level.DEBUG, "TCPStore server on {0} stopped", address);
  }

  private void onSelected(SelectionKey key) {
    if (key == listenerKey) {
      acceptAll();
      return;
    }
    Connection c = (Connection) key.attachment();
    if (!key.isValid()) {
      return;
    }
    try {
      int ready = key.readyOps();
      if ((ready & SelectionKey.OP_READ) != 0) {
        onReadable(c);
      }
      if (!c.closed && (ready & SelectionKey.OP_WRITE) != 0) {
        flush(c);
      }
    } catch (RuntimeException e) {
      // A bug must cost one connection, never the server.
      LOG.log(
          Level.ERROR,
          "TCPStore server on " + address + ": internal error on connection " + c.describe(),
          e);
      close(c, Level.ERROR, "internal error: " + e);
    }
  }

  private void acceptAll() {
    for (int i = 0; i < 4096; i++) {
      SocketChannel channel;
      try {
        channel = listener.accept();
      } catch (IOException e) {
        // Typically EMFILE: stop accepting for a moment instead of spinning on the listener.
        LOG.log(
            Level.WARNING, "TCPStore server on {0}: accept failed: {1}", address, e.getMessage());
        listenerKey.interestOps(0);
        acceptPausedUntil = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(100);
        return;
      }
      if (channel == null) {
        return;
      }
      try {
        channel.configureBlocking(false);
        channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
        Connection c = new Connection(channel, ++nextConnectionId);
        c.key = channel.register(selector, SelectionKey.OP_READ, c);
        all.add(c);
        c.index = all.size() - 1;
        connectionCount = all.size();
      } catch (IOException e) {
        LOG.log(Level.DEBUG, "setting up an accepted connection failed", e);
        try {
          channel.close();
        } catch (IOException ignored) {
          // already failing
        }
      }
    }
  }

  private void onReadable(Connection c) {
    for (int round = 0; round < 8; round++) {
      readBuffer.clear();
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
      readBuffer.flip();
      try {
        c.decoder.feed(readBuffer, c);
      } catch (ProtocolException e) {
        close(c, Level.WARNING, e.getMessage());
        return;
      }
      if (c.closed) {
        return;
      }
      if (c.dirty) {
        // Answer now rather than after the whole batch: the client is waiting for it.
        c.dirty = false;
        flush(c);
        if (c.closed) {
          return;
        }
      }
      if (n < READ_BUFFER || c.readPaused) {
        return;
      }
    }
  }

  private void flushDirty() {
    if (dirty.isEmpty()) {
      return;
    }
    for (int i = 0; i < dirty.size(); i++) {
      Connection c = dirty.get(i);
      c.dirty = false;
      if (!c.closed) {
        try {
          flush(c);
        } catch (RuntimeException e) {
          LOG.log(
              Level.ERROR,
              "TCPStore server on " + address + ": internal error on connection " + c.describe(),
              e);
          close(c, Level.ERROR, "internal error: " + e);
        }
      }
    }
    dirty.clear();
  }

  private void flush(Connection c) {
    boolean done;
    try {
      done = c.out.writeTo(c.channel);
    } catch (IOException e) {
      close(c, Level.DEBUG, "write failed: " + e.getMessage());
      return;
    }
    int ops = SelectionKey.OP_READ;
    if (!done) {
      ops |= SelectionKey.OP_WRITE;
      if (c.out.pendingBytes() > HIGH_WATER) {
        ops &= ~SelectionKey.OP_READ;
      }
    }
    c.readPaused = (ops & SelectionKey.OP_READ) == 0;
    if (c.key.interestOps() != ops) {
      c.key.interestOps(ops);
    }
  }

  private void close(Connection c, Level level, String reason) {
    if (c.closed) {
      return;
    }
    if (LOG.isLoggable(level)) {
      LOG.log(
          level,
          "TCPStore server on {0}: closing connection {1}: {2}",
          address,
          c.describe(),
          reason);
    }
    closeQuietly(c);
    // O(1) removal: move the last connection into the hole.
    int i = c.index;
    Connection last = all.remove(all.size() - 1);
    if (last != c) {
      all.set(i, last);
      last.index = i;
    }
    connectionCount = all.size();
  }

  private void closeQuietly(Connection c) {
    c.closed = true;
    state.disconnected(c);
    if (c.key != null) {
      c.key.cancel();
    }
    try {
      c.channel.close();
    } catch (IOException e) {
      LOG.log(Level.DEBUG, "closing a connection", e);
    }
  }

  /** One client connection: a {@link Session} with its channel and decoder. */
  private final class Connection extends Session implements RequestDecoder.Sink {
    final SocketChannel channel;
    final RequestDecoder decoder = new RequestDecoder(limits);
    final long id;
    SelectionKey key;
    int index;
    boolean closed;
    boolean readPaused;

    Connection(SocketChannel channel, long id) {
      super(null);
      this.channel = channel;
      this.id = id;
    }

    @Override
    public void accept(Request request) throws ProtocolException {
      if (family == null) {
        family = decoder.family();
      }
      state.execute(this, request);
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
