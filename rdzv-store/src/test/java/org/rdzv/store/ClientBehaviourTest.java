package org.rdzv.store;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.rdzv.api.StoreException;
import org.rdzv.testing.Await;

/** Client behaviours: dialect fallback, interrupts, close while blocked, late servers. */
class ClientBehaviourTest {

  /**
   * In front of our server, behaves like a torch 2.4 server: a connection whose first message is
   * VALIDATE followed by PING is closed (2.4 does not know PING); everything else passes through.
   */
  static final class TwoFourProxy implements AutoCloseable {
    final ServerSocket listener;
    final AtomicInteger refusedPings = new AtomicInteger();

    TwoFourProxy(int target) throws IOException {
      listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
      Thread.ofPlatform()
          .daemon()
          .start(
              () -> {
                while (true) {
                  try {
                    Socket client = listener.accept();
                    Thread.ofPlatform().daemon().start(() -> serve(client, target));
                  } catch (IOException e) {
                    return;
                  }
                }
              });
    }

    private void serve(Socket client, int target) {
      try (client;
          Socket upstream = new Socket(InetAddress.getLoopbackAddress(), target)) {
        InputStream in = client.getInputStream();
        byte[] hello = in.readNBytes(5);
        upstream.getOutputStream().write(hello);
        int next = in.read();
        if (next == 0x0D) {
          refusedPings.incrementAndGet();
          return; // close, as 2.4 does on an unknown command
        }
        if (next < 0) {
          return;
        }
        upstream.getOutputStream().write(next);
        Thread.ofPlatform().daemon().start(() -> pump(upstream, client));
        pump(client, upstream);
      } catch (IOException e) {
        // a side went away
      }
    }

    private static void pump(Socket from, Socket to) {
      byte[] buf = new byte[8192];
      try {
        InputStream in = from.getInputStream();
        OutputStream out = to.getOutputStream();
        int n;
        while ((n = in.read(buf)) > 0) {
          out.write(buf, 0, n);
        }
      } catch (IOException e) {
        // closed
      }
    }

    int port() {
      return listener.getLocalPort();
    }

    @Override
    public void close() throws IOException {
      listener.close();
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = StoreProtocol.class,
      names = {"AUTO", "V2"})
  void fallsBackToTheTwoFourHandshakeWithoutPing(StoreProtocol protocol) throws Exception {
    try (TcpStoreServer server = TcpStoreServer.start("127.0.0.1", 0);
        TwoFourProxy proxy = new TwoFourProxy(server.port());
        TcpStore store =
            TcpStore.connect(
                TcpStoreOptions.builder("127.0.0.1", proxy.port())
                    .protocol(protocol)
                    .timeout(Duration.ofSeconds(5))
                    .build())) {
      assertThat(store.protocol()).isEqualTo(StoreProtocol.V2);
      assertThat(proxy.refusedPings.get()).isEqualTo(1);
      store.set("k", "v");
      assertThat(store.getString("k")).isEqualTo("v");
      // A reconnect (after a server-side close) goes straight to the handshake that worked.
      assertThatThrownBy(() -> store.append("k", new byte[9 * 1024 * 1024]))
          .isInstanceOf(StoreException.class);
      assertThat(store.add("n", 1)).isEqualTo(1);
      assertThat(proxy.refusedPings.get()).isEqualTo(1);
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = StoreProtocol.class,
      names = {"V1_13", "V2"})
  void interruptingABlockedGetReleasesItAndTheClientStaysUsable(StoreProtocol protocol)
      throws Exception {
    try (TcpStoreServer server = TcpStoreServer.start("127.0.0.1", 0);
        TcpStore store =
            TcpStore.connect(
                TcpStoreOptions.builder("127.0.0.1", server.port()).protocol(protocol).build())) {
      AtomicBoolean flagSeen = new AtomicBoolean();
      CompletableFuture<Throwable> outcome = new CompletableFuture<>();
      Thread waiter =
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      store.get("never");
                      outcome.complete(null);
                    } catch (Throwable t) {
                      flagSeen.set(Thread.currentThread().isInterrupted());
                      outcome.complete(t);
                    }
                  });
      Await.until("the get is parked", Duration.ofSeconds(5), () -> server.pendingWaits() == 1);
      waiter.interrupt();
      assertThat(outcome.get(5, TimeUnit.SECONDS))
          .isInstanceOf(StoreException.class)
          .hasMessageContaining("interrupted");
      assertThat(flagSeen).isTrue();
      Await.until(
          "the wait is gone from the server",
          Duration.ofSeconds(5),
          () -> server.pendingWaits() == 0);
      store.set("after", "ok");
      assertThat(store.getString("after")).isEqualTo("ok");
    }
  }

  @Test
  void closeReleasesAThreadBlockedInGet() throws Exception {
    try (TcpStoreServer server = TcpStoreServer.start("127.0.0.1", 0)) {
      TcpStore store = TcpStore.connect("127.0.0.1", server.port());
      CompletableFuture<byte[]> get = CompletableFuture.supplyAsync(() -> store.get("never"));
      Await.until("the get is parked", Duration.ofSeconds(5), () -> server.pendingWaits() == 1);
      store.close();
      assertThatThrownBy(() -> get.get(5, TimeUnit.SECONDS))
          .isInstanceOf(ExecutionException.class)
          .hasCauseInstanceOf(StoreException.class);
    }
  }

  @Test
  void connectRetriesUntilTheServerAppears() throws Exception {
    int port;
    try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = probe.getLocalPort();
    }
    CompletableFuture<TcpStore> connecting =
        CompletableFuture.supplyAsync(
            () ->
                TcpStore.connect(
                    TcpStoreOptions.builder("127.0.0.1", port)
                        .timeout(Duration.ofSeconds(20))
                        .build()));
    // Nothing listens yet: the client is retrying with backoff.
    assertThat(connecting).isNotDone();
    try (TcpStoreServer server = TcpStoreServer.start("127.0.0.1", port);
        TcpStore store = connecting.get(20, TimeUnit.SECONDS)) {
      assertThat(store.add("c", 2)).isEqualTo(2);
      assertThat(server.connectionCount()).isEqualTo(1);
    }
  }

  @Test
  void serverBindFailureIsAClearError() {
    try (TcpStoreServer first = TcpStoreServer.start("127.0.0.1", 0)) {
      assertThatThrownBy(() -> TcpStoreServer.start("127.0.0.1", first.port()))
          .isInstanceOf(StoreException.class)
          .hasMessageContaining("failed to listen on 127.0.0.1:" + first.port());
    }
  }

  @Test
  void dualStackWildcardAcceptsIpv4AndIpv6() throws Exception {
    try (TcpStoreServer server = TcpStoreServer.start("", 0);
        TcpStore v4 = TcpStore.connect("127.0.0.1", server.port())) {
      v4.set("k", "v");
      boolean ipv6 =
          java.net.NetworkInterface.networkInterfaces()
              .flatMap(i -> i.inetAddresses())
              .anyMatch(a -> a instanceof java.net.Inet6Address && a.isLoopbackAddress());
      if (ipv6) {
        try (Socket s = new Socket()) {
          s.connect(new InetSocketAddress("::1", server.port()), 2000);
        }
        try (TcpStore v6 = TcpStore.connect("::1", server.port())) {
          assertThat(v6.getString("k")).isEqualTo("v");
        }
      }
      assertThat(v4.listKeys()).containsExactly("k");
    }
  }
}
