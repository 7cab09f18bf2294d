package org.rdzv.store;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Many clients at once against one server: exact counters, thousands of connections. */
class ConcurrencyTest {

  private static TcpStoreOptions options(TcpStoreServer server, StoreProtocol protocol) {
    return TcpStoreOptions.builder("127.0.0.1", server.port())
        .protocol(protocol)
        .timeout(Duration.ofSeconds(30))
        .build();
  }

  @Test
  void manyClientsAddToOneCounterExactly() throws Exception {
    int clients = 32;
    int adds = 500;
    try (TcpStoreServer server = TcpStoreServer.start("127.0.0.1", 0)) {
      ExecutorService pool = Executors.newFixedThreadPool(clients);
      try {
        List<Future<Long>> results = new ArrayList<>();
        for (int c = 0; c < clients; c++) {
          StoreProtocol protocol = c % 2 == 0 ? StoreProtocol.V1_13 : StoreProtocol.V2;
          results.add(
              pool.submit(
                  () -> {
                    long max = 0;
                    try (TcpStore store = TcpStore.connect(options(server, protocol))) {
                      for (int i = 0; i < adds; i++) {
                        max = Math.max(max, store.add("counter", 1));
                      }
                    }
                    return max;
                  }));
        }
        long highest = 0;
        for (Future<Long> r : results) {
          highest = Math.max(highest, r.get(60, TimeUnit.SECONDS));
        }
        assertThat(highest).isEqualTo((long) clients * adds);
      } finally {
        pool.shutdownNow();
      }
      try (TcpStore check = TcpStore.connect(options(server, StoreProtocol.AUTO))) {
        assertThat(check.getString("counter")).isEqualTo(Integer.toString(clients * adds));
      }
    }
  }

  @Test
  void oneClientSharedByManyThreads() throws Exception {
    try (TcpStoreServer server = TcpStoreServer.start("127.0.0.1", 0);
        TcpStore store = TcpStore.connect(options(server, StoreProtocol.V2))) {
      ExecutorService pool = Executors.newFixedThreadPool(8);
      try {
        List<Future<?>> futures = new ArrayList<>();
        for (int t = 0; t < 8; t++) {
          int id = t;
          futures.add(
              pool.submit(
                  () -> {
                    for (int i = 0; i < 300; i++) {
                      store.add("shared", 1);
                      store.set("t" + id, Integer.toString(i));
                      assertThat(store.getString("t" + id)).isEqualTo(Integer.toString(i));
                    }
                    return null;
                  }));
        }
        for (Future<?> f : futures) {
          f.get(60, TimeUnit.SECONDS);
        }
      } finally {
        pool.shutdownNow();
      }
      assertThat(store.add("shared", 0)).isEqualTo(2400);
    }
  }

  @Test
  void twoThousandConcurrentConnections() throws Exception {
    int n = 2000;
    try (TcpStoreServer server = TcpStoreServer.start("127.0.0.1", 0)) {
      List<TcpStore> stores = new ArrayList<>(n);
      try {
        for (int i = 0; i < n; i++) {
          stores.add(
              TcpStore.connect(
                  options(server, i % 2 == 0 ? StoreProtocol.V1_13 : StoreProtocol.AUTO)));
        }
        // Every connection is open at once and each one is served.
        for (TcpStore s : stores) {
          s.add("joined", 1);
        }
        assertThat(server.connectionCount()).isEqualTo(n);
        // Everyone blocks on one key; a single SET releases all of them.
        ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
        List<Future<String>> gets = new ArrayList<>(n);
        for (TcpStore s : stores) {
          gets.add(pool.submit(() -> s.getString("go")));
        }
        org.rdzv.testing.Await.until(
            "all " + n + " gets parked", Duration.ofSeconds(30), () -> server.pendingWaits() == n);
        try (TcpStore setter = TcpStore.connect(options(server, StoreProtocol.V2))) {
          setter.set("go", "now");
        }
        for (Future<String> g : gets) {
          assertThat(g.get(30, TimeUnit.SECONDS)).isEqualTo("now");
        }
        pool.shutdown();
        assertThat(stores.get(1).add("joined", 0)).isEqualTo(n);
      } finally {
        for (TcpStore s : stores) {
          s.close();
        }
      }
      org.rdzv.testing.Await.until(
          "connections closed", Duration.ofSeconds(10), () -> server.connectionCount() == 0);
    }
  }
}
