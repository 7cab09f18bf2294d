package org.rdzv.store;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.rdzv.api.StoreException;
import org.rdzv.api.StoreTimeoutException;

/** Our client against our server, in both protocol families. */
class TcpStoreRoundTripTest {
  private TcpStoreServer server;

  @BeforeEach
  void start() {
    server = TcpStoreServer.start("127.0.0.1", 0);
  }

  @AfterEach
  void stop() {
    server.close();
  }

  private TcpStore client(StoreProtocol protocol) {
    return TcpStore.connect(
        TcpStoreOptions.builder("127.0.0.1", server.port())
            .protocol(protocol)
            .timeout(Duration.ofSeconds(5))
            .build());
  }

  @ParameterizedTest
  @EnumSource(StoreProtocol.class)
  void basicCommands(StoreProtocol protocol) {
    try (TcpStore store = client(protocol)) {
      assertThat(store.protocol())
          .isEqualTo(protocol == StoreProtocol.V1_13 ? StoreProtocol.V1_13 : StoreProtocol.V2);
      store.set("k", "v1");
      assertThat(store.getString("k")).isEqualTo("v1");
      assertThat(store.add("cnt", 5)).isEqualTo(5);
      assertThat(store.add("cnt", -2)).isEqualTo(3);
      assertThat(store.getString("cnt")).isEqualTo("3");
      assertThat(store.compareSet("k", "v1".getBytes(UTF_8), "v2".getBytes(UTF_8)))
          .asString(UTF_8)
          .isEqualTo("v2");
      assertThat(store.compareSet("k", "zz".getBytes(UTF_8), "v3".getBytes(UTF_8)))
          .asString(UTF_8)
          .isEqualTo("v2");
      assertThat(store.compareSet("missing", "x".getBytes(UTF_8), "y".getBytes(UTF_8)))
          .asString(UTF_8)
          .isEqualTo("x");
      assertThat(store.compareSet("newk", new byte[0], "y".getBytes(UTF_8)))
          .asString(UTF_8)
          .isEqualTo("y");
      assertThat(store.check(List.of("k", "cnt"))).isTrue();
      assertThat(store.check(List.of("k", "nope"))).isFalse();
      assertThat(store.check(List.of())).isTrue();
      store.await(List.of("k"));
      assertThat(store.numKeys()).isEqualTo(3);
      assertThat(store.deleteKey("k")).isTrue();
      assertThat(store.deleteKey("k")).isFalse();
      store.multiSet(List.of("m1", "m2"), List.of("x1".getBytes(UTF_8), "y22".getBytes(UTF_8)));
      assertThat(store.multiGet(List.of("m1", "m2")))
          .map(b -> new String(b, UTF_8))
          .containsExactly("x1", "y22");
      assertThat(server.numKeys()).isGreaterThanOrEqualTo(0);
    }
  }

  @ParameterizedTest
  @EnumSource(StoreProtocol.class)
  void waitTimesOutAndTheConnectionStaysUsable(StoreProtocol protocol) {
    try (TcpStore store = client(protocol)) {
      long start = System.nanoTime();
      assertThatThrownBy(() -> store.await(List.of("never"), Duration.ofMillis(300)))
          .isInstanceOf(StoreTimeoutException.class);
      assertThat(System.nanoTime() - start)
          .isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(290));
      store.set("later", "x");
      assertThat(store.getString("later")).isEqualTo("x");
      assertThat(store.add("c", 1)).isEqualTo(1);
    }
  }

  @ParameterizedTest
  @EnumSource(StoreProtocol.class)
  void blockingGetIsReleasedByAnotherClient(StoreProtocol protocol) throws Exception {
    try (TcpStore waiter = client(protocol);
        TcpStore setter = client(protocol)) {
      CompletableFuture<String> got = CompletableFuture.supplyAsync(() -> waiter.getString("late"));
      org.rdzv.testing.Await.until(
          "the waiter is parked on the server", Duration.ofSeconds(5), () -> waiterParked());
      assertThat(got).isNotDone();
      setter.set("late", "value");
      assertThat(got.get(5, TimeUnit.SECONDS)).isEqualTo("value");
    }
  }

  private boolean waiterParked() {
    return server.pendingWaits() == 1;
  }

  @Test
  void twoXOnlyCommands() {
    try (TcpStore store = client(StoreProtocol.V2)) {
      store.append("ap", "ab".getBytes(UTF_8));
      store.append("ap", "cd".getBytes(UTF_8));
      assertThat(store.getString("ap")).isEqualTo("abcd");
      store.queuePush("q", "e1".getBytes(UTF_8));
      store.queuePush("q", "e2".getBytes(UTF_8));
      assertThat(store.queueLen("q")).isEqualTo(2);
      assertThat(store.queuePop("q", false)).asString(UTF_8).isEqualTo("e1");
      assertThat(store.queuePop("q", true)).asString(UTF_8).isEqualTo("e2");
      assertThat(store.queuePop("q", false)).isNull();
      assertThat(store.listKeys()).containsExactlyInAnyOrder("ap");
      assertThatThrownBy(() -> store.watchKey("x", e -> {}))
          .isInstanceOf(UnsupportedOperationException.class);
    }
  }

  @Test
  void oneThirteenWatchKey() throws Exception {
    try (TcpStore watcher = client(StoreProtocol.V1_13);
        TcpStore writer = client(StoreProtocol.V1_13)) {
      LinkedBlockingQueue<WatchEvent> events = new LinkedBlockingQueue<>();
      AutoCloseable handle = watcher.watchKey("wk", events::add);
      writer.set("wk", "A");
      writer.set("wk", "B");
      writer.deleteKey("wk");
      assertThat(events.poll(5, TimeUnit.SECONDS))
          .isEqualTo(
              new WatchEvent(WatchEvent.Type.KEY_CREATED, "wk", new byte[0], "A".getBytes(UTF_8)));
      assertThat(events.poll(5, TimeUnit.SECONDS))
          .isEqualTo(
              new WatchEvent(
                  WatchEvent.Type.KEY_UPDATED, "wk", "A".getBytes(UTF_8), "B".getBytes(UTF_8)));
      assertThat(events.poll(5, TimeUnit.SECONDS))
          .isEqualTo(
              new WatchEvent(WatchEvent.Type.KEY_DELETED, "wk", "B".getBytes(UTF_8), new byte[0]));
      handle.close();
      assertThatThrownBy(() -> watcher.append("x", new byte[1]))
          .isInstanceOf(UnsupportedOperationException.class);
    }
  }

  @ParameterizedTest
  @EnumSource(StoreProtocol.class)
  void worldSizeAnnouncesTheWorker(StoreProtocol protocol) {
    TcpStoreOptions options =
        TcpStoreOptions.builder("127.0.0.1", server.port()).protocol(protocol).worldSize(2).build();
    try (TcpStore a = TcpStore.connect(options);
        TcpStore b = TcpStore.connect(options);
        TcpStore raw = client(StoreProtocol.V2)) {
      assertThat(raw.numKeys()).isEqualTo(1);
      assertThat(raw.listKeys()).isEmpty();
    }
  }

  @Test
  void connectingToNothingTimesOut() {
    server.close();
    long start = System.nanoTime();
    assertThatThrownBy(
            () ->
                TcpStore.connect(
                    TcpStoreOptions.builder("127.0.0.1", server.port())
                        .timeout(Duration.ofMillis(500))
                        .build()))
        .isInstanceOf(StoreTimeoutException.class)
        .hasMessageContaining("127.0.0.1:" + server.port());
    assertThat(System.nanoTime() - start)
        .isGreaterThanOrEqualTo(TimeUnit.MILLISECONDS.toNanos(450));
  }

  @Test
  void closedClientRefuses() {
    TcpStore store = client(StoreProtocol.AUTO);
    store.close();
    store.close();
    assertThatThrownBy(() -> store.set("a", "b")).isInstanceOf(StoreException.class);
  }
}
