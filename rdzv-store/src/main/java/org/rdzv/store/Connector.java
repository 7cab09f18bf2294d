package org.rdzv.store;

import java.io.EOFException;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.rdzv.api.StoreException;
import org.rdzv.api.StoreTimeoutException;

/**
 * How a {@link TcpStoreClient} reaches its server: resolving the host (every address it has,
 * starting with the one that answered last), retrying with jittered backoff until a deadline, and
 * the handshake that settles the protocol family on {@code AUTO} (2.5+ VALIDATE and PING, then 2.4
 * VALIDATE and GETNUMKEYS, then 1.13). Remembers the family and address for reconnects.
 *
 * <p>{@link #open} is called by one thread at a time (the client's request lock); {@link #openAny}
 * also by the watch connection, and touches only volatile state.
 */
final class Connector {
  private static final System.Logger LOG = System.getLogger(TcpStore.class.getName());
  private static final long INITIAL_BACKOFF_NANOS = TimeUnit.MILLISECONDS.toNanos(20);
  private static final long MAX_BACKOFF_NANOS = TimeUnit.SECONDS.toNanos(1);

  private final TcpStoreOptions options;
  private final Frame frame = new Frame();

  /** The address that answered last; tried first on reconnects. */
  private volatile InetSocketAddress address;

  /** Resolved family; null until the first connection settles it (AUTO). */
  private volatile Family family;

  /** Whether the 2.x server answers PING (2.5+). */
  private boolean pingSupported = true;

  /** Whether a connection was ever made: then a refused reconnect means the server is gone. */
  private volatile boolean connected;

  /** Set by the client's close: a connect loop in progress gives up. */
  private volatile boolean cancelled;

  /** Makes {@link #open} give up at its next attempt (the client closes). */
  void cancel() {
    cancelled = true;
  }

  /** How often the first connection says that it still waits for a refusing server. */
  private static final long WAITING_NOTE_NANOS = TimeUnit.SECONDS.toNanos(10);

  Connector(TcpStoreOptions options) {
    this.options = options;
    this.address = InetSocketAddress.createUnresolved(options.host(), options.port());
    this.family =
        switch (options.protocol()) {
          case V1_13 -> Family.V1;
          case V2, AUTO -> null;
        };
  }

  /** The protocol family, or {@code null} before the first connection settled an AUTO client. */
  Family family() {
    return family;
  }

  /**
   * Connects (and handshakes) with retries until {@code deadline}. One caller at a time. A refused
   * connection is retried only while waiting for a server to come up the first time ({@link
   * TcpStoreOptions#awaitServer()}); a server that was reachable and now refuses is gone (killed,
   * or its host restarted), so that is reported at once instead of after the timeout. Other
   * failures (timeouts, resets during the handshake, an unreachable host) are retried until the
   * deadline.
   *
   * @throws StoreException at once for a refused connection that is not awaited, naming the address
   * @throws StoreTimeoutException when the deadline passes
   */
  Link open(long deadline) {
    long backoff = INITIAL_BACKOFF_NANOS;
    IOException last = null;
    int attempts = 0;
    long start = System.nanoTime();
    long nextNote = start + WAITING_NOTE_NANOS;
    while (true) {
      attempts++;
      try {
        Link l = attempt(deadline);
        connected = true;
        return l;
      } catch (IOException e) {
        last = e;
        LOG.log(Level.DEBUG, "connecting to {0} failed: {1}", address, e.toString());
        if (refused(e) && (connected || !options.awaitServer())) {
          throw new StoreException(
              "connecting to the store at "
                  + describeAddress()
                  + " failed: "
                  + e.getMessage()
                  + (connected ? " (it was reachable before: the store has gone)" : ""),
              e);
        }
      }
      long now = System.nanoTime();
      if (now - nextNote >= 0 && deadline - now > 0) {
        nextNote = now + WAITING_NOTE_NANOS;
        LOG.log(
            Level.INFO,
            "waiting for the store at {0} ({1}); retrying for {2} s more",
            describeAddress(),
            describe(last),
            String.valueOf((deadline - now) / 1_000_000_000L));
      }
      if (cancelled) {
        throw new StoreException("the store client for " + describeAddress() + " is closed");
      }
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        throw new StoreTimeoutException(
            "The client socket has timed out after "
                + options.timeout().toMillis()
                + "ms while trying to connect to "
                + describeAddress()
                + " ("
                + attempts
                + " attempts): "
                + describe(last),
            last);
      }
      long jittered = backoff / 2 + ThreadLocalRandom.current().nextLong(backoff);
      long pause = Math.min(jittered, left);
      try {
        TimeUnit.NANOSECONDS.sleep(pause);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new StoreException("interrupted while connecting to " + describeAddress(), e);
      }
      backoff = Math.min(backoff * 2, MAX_BACKOFF_NANOS);
    }
  }

  /** The message of {@code e}, or its kind when it has none ("SocketTimeoutException"). */
  private static String describe(IOException e) {
    return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
  }

  /** Whether every address refused (nothing listens there), as opposed to a timeout or reset. */
  private static boolean refused(IOException e) {
    if (!(e instanceof java.net.ConnectException)) {
      return false;
    }
    for (Throwable other : e.getSuppressed()) {
      if (!(other instanceof java.net.ConnectException)) {
        return false;
      }
    }
    return true;
  }

  static int millisLeft(long deadline) {
    return (int)
        Math.max(1, Math.min(Integer.MAX_VALUE, (deadline - System.nanoTime()) / 1_000_000));
  }

  private Link attempt(long deadline) throws IOException {
    Family known = family;
    if (known == Family.V1) {
      return openAny(deadline);
    }
    if (known == Family.V2) {
      Link l = openAny(deadline);
      try {
        handshake(l, pingSupported, deadline);
        return l;
      } catch (IOException | RuntimeException e) {
        l.close();
        throw e;
      }
    }
    // Unknown: probe 2.5+ (VALIDATE + PING), then 2.4 (VALIDATE only), then 1.13.
    Link l = openAny(deadline);
    try {
      handshake(l, true, deadline);
      pingSupported = true;
      family = Family.V2;
      return l;
    } catch (EOFException | SocketException e) {
      l.close();
      LOG.log(Level.DEBUG, "{0}: no answer to VALIDATE+PING ({1})", address, e.getMessage());
    } catch (IOException | RuntimeException e) {
      l.close();
      throw e;
    }
    l = openAny(deadline);
    try {
      handshake(l, false, deadline);
      // Four GETNUMKEYS confirm a 2.4 server; to a 1.13 server these bytes are a SET whose key
      // length (0x0707070 73C85F7CE) it cannot allocate, so it closes the connection.
      frame.reset();
      for (int i = 0; i < 4; i++) {
        frame.u8(Command.GETNUMKEYS.code(Family.V2));
      }
      l.send(frame);
      l.readTimeout(millisLeft(deadline));
      for (int i = 0; i < 4; i++) {
        l.i64();
      }
      pingSupported = false;
      family = Family.V2;
      return l;
    } catch (EOFException | SocketException e) {
      l.close();
      LOG.log(Level.DEBUG, "{0}: no answer to VALIDATE+GETNUMKEYS ({1})", address, e.getMessage());
    } catch (IOException | RuntimeException e) {
      l.close();
      throw e;
    }
    if (options.protocol() == StoreProtocol.V2) {
      // Both handshakes were refused by closing: a 1.13 server (a 2.x one never does that). Not
      // worth retrying until the timeout: it will not learn the protocol meanwhile.
      throw new StoreException(
          "The store server at "
              + describeAddress()
              + " does not speak PyTorch 2.x's TCPStore protocol (store_protocol=2): it closed the"
              + " connection at the 2.x handshake, as a PyTorch 1.13 server does; set"
              + " store_protocol=1.13, or auto to detect it.");
    }
    family = Family.V1;
    return openAny(deadline);
  }

  /**
   * Connects to the first of the host's addresses that accepts (like PyTorch, which tries every
   * address the name resolves to), starting with the one that worked last.
   */
  Link openAny(long deadline) throws IOException {
    InetSocketAddress last = address;
    IOException failure = null;
    if (!last.isUnresolved()) {
      try {
        return Link.open(last, millisLeft(deadline));
      } catch (IOException e) {
        failure = e;
      }
    }
    for (InetAddress candidate : InetAddress.getAllByName(options.host())) {
      InetSocketAddress target = new InetSocketAddress(candidate, options.port());
      if (target.equals(last)) {
        continue;
      }
      try {
        Link l = Link.open(target, millisLeft(deadline));
        address = target;
        return l;
      } catch (IOException e) {
        if (failure == null) {
          failure = e;
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    throw failure != null ? failure : new java.net.ConnectException("Connection refused");
  }

  /** Sends VALIDATE (+ PING) and checks the echo. Nothing ever answers VALIDATE itself. */
  private void handshake(Link l, boolean ping, long deadline) throws IOException {
    frame.reset().u8(Command.VALIDATE.code(Family.V2)).u32(Wire.VALIDATION_MAGIC);
    int nonce = (int) ProcessHandle.current().pid();
    if (ping) {
      frame.u8(Command.PING.code(Family.V2)).u32(nonce);
    }
    l.send(frame);
    if (ping) {
      l.readTimeout(millisLeft(deadline));
      int echo = l.u32();
      if (echo != nonce) {
        throw new IOException(
            "Ping failed, invalid value returned from server. Expected: "
                + nonce
                + ", got: "
                + echo);
      }
    }
  }

  /** {@code host:port} as configured, for messages. */
  String describeAddress() {
    return options.host() + ":" + options.port();
  }
}
