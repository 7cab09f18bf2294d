package org.rdzv.etcd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.rdzv.api.Store;
import org.rdzv.api.StoreTimeoutException;
import org.rdzv.testing.EtcdProcess;
import org.rdzv.testing.Peers;
import org.rdzv.testing.PythonProcess;
import org.rdzv.testing.Torch;

/** PyTorch's EtcdStore encodings and semantics, against a real etcd. */
class EtcdV2StoreTest {
  private static EtcdProcess etcd;
  private static EtcdV2Client raw;

  @BeforeAll
  static void startEtcd() {
    Peers.requireEtcdServer();
    etcd = EtcdProcess.start();
    raw = EtcdV2Client.create(EtcdConnection.of(etcd.endpoint()));
  }

  @AfterAll
  static void stopEtcd() {
    if (etcd != null) {
      etcd.close();
    }
  }

  private static Store store(String prefix) {
    return EtcdRendezvous.v2Store(
        EtcdConnection.of(etcd.endpoint()), prefix, Duration.ofSeconds(30));
  }

  @Test
  void keysAndValuesAreBase64UnderThePrefixAsInPyTorch() {
    Store store = store("/torch/elastic/store");
    store.set("torch.rendezvous.rv2a.0/from_1", "hello1");
    // The layout observed with PyTorch 1.13 (reference section 6.3).
    EtcdV2Client.Node node =
        raw.get("/torch/elastic/store/dG9yY2gucmVuZGV6dm91cy5ydjJhLjAvZnJvbV8x", false).node();
    assertThat(node.value()).isEqualTo("aGVsbG8x");
    assertThat(node.ttl()).isZero();
    assertThat(store.getString("torch.rendezvous.rv2a.0/from_1")).isEqualTo("hello1");
  }

  @Test
  void binaryValuesRoundTrip() {
    Store store = store("/t/binary");
    byte[] value = {0, -1, 10, 13, (byte) 0x80, 0x7f};
    store.set("bin", value);
    assertThat(store.get("bin")).containsExactly(value);
    assertThat(raw.get("/t/binary/" + "Ymlu", false).node().value()).isEqualTo("AP8KDYB/");
  }

  @Test
  void addKeepsBase64DecimalCountersAndSurvivesConflicts() throws Exception {
    Store store = store("/t/add");
    assertThat(store.add("counter", 5)).isEqualTo(5);
    assertThat(raw.get("/t/add/Y291bnRlcg==", false).node().value()).isEqualTo("NQ==");
    assertThat(store.add("counter", -2)).isEqualTo(3);
    List<CompletableFuture<Void>> adders = new ArrayList<>();
    for (int t = 0; t < 8; t++) {
      adders.add(
          CompletableFuture.runAsync(
              () -> {
                for (int i = 0; i < 10; i++) {
                  store.add("counter", 1);
                }
              }));
    }
    CompletableFuture.allOf(adders.toArray(CompletableFuture[]::new)).get(60, TimeUnit.SECONDS);
    assertThat(store.add("counter", 0)).isEqualTo(83);
  }

  @Test
  void compareSetFollowsTheStoreContract() {
    Store store = store("/t/cas");
    byte[] a = "a".getBytes(StandardCharsets.UTF_8);
    byte[] b = "b".getBytes(StandardCharsets.UTF_8);
    assertThat(store.compareSet("k", b, a)).isEqualTo(b); // missing, expected not empty
    assertThat(store.check(List.of("k"))).isFalse();
    assertThat(store.compareSet("k", new byte[0], a)).isEqualTo(a); // created
    assertThat(store.compareSet("k", b, b)).isEqualTo(a); // mismatch: current value
    assertThat(store.compareSet("k", a, b)).isEqualTo(b); // swapped
    assertThat(store.getString("k")).isEqualTo("b");
  }

  @Test
  void aKeyWhoseBase64HoldsASlashIsStoredAtPyTorchsPathAndStillReadable() {
    Store store = store("/t/slash");
    // base64("???") = "Pz8/": PyTorch's listing never finds it and its get times out.
    store.set("???", "odd");
    List<String> listed = new ArrayList<>();
    for (EtcdV2Client.Node child : raw.get("/t/slash", false).node().nodes()) {
      listed.add(child.key() + (child.dir() ? "/" : ""));
    }
    assertThat(listed).containsExactly("/t/slash/Pz8");
    assertThat(store.getString("???")).isEqualTo("odd");
    // A slash in the middle makes a sub-directory: "ab??" encodes as "YWI/Pw==".
    store.set("ab??", "nested");
    assertThat(store.getString("ab??")).isEqualTo("nested");
  }

  @Test
  void waitingEndsWithTimeoutWhenTheKeyNeverComes() {
    Store store = store("/t/timeout");
    long start = System.nanoTime();
    assertThatThrownBy(() -> store.await(List.of("never"), Duration.ofMillis(300)))
        .isInstanceOf(StoreTimeoutException.class)
        .hasMessage("Timeout while waiting for keys in EtcdStore");
    long elapsed = System.nanoTime() - start;
    assertThat(elapsed).isBetween(TimeUnit.MILLISECONDS.toNanos(290), TimeUnit.SECONDS.toNanos(5));
    store.setTimeout(Duration.ofMillis(200));
    assertThatThrownBy(() -> store.get("never"))
        .isInstanceOf(StoreTimeoutException.class)
        .hasMessage("Key never not found in EtcdStore");
  }

  @Test
  void aWaiterWakesWhenTheKeysAreWrittenEvenBeforeThePrefixExists() throws Exception {
    Store store = store("/t/wake/" + System.nanoTime());
    CompletableFuture<List<byte[]>> waiter =
        CompletableFuture.supplyAsync(() -> store.multiGet(List.of("x", "y")));
    store.set("x", "1");
    store.set("y", "2");
    long start = System.nanoTime();
    List<byte[]> values = waiter.get(20, TimeUnit.SECONDS);
    assertThat(System.nanoTime() - start).isLessThan(TimeUnit.SECONDS.toNanos(5));
    assertThat(new String(values.get(0), StandardCharsets.UTF_8)).isEqualTo("1");
    assertThat(new String(values.get(1), StandardCharsets.UTF_8)).isEqualTo("2");
  }

  @Test
  void deleteAppendAndNumKeys() {
    Store store = store("/t/misc");
    assertThat(store.numKeys()).isZero();
    store.append("log", "ab".getBytes(StandardCharsets.UTF_8));
    store.append("log", "cd".getBytes(StandardCharsets.UTF_8));
    assertThat(store.getString("log")).isEqualTo("abcd");
    store.multiSet(List.of("p", "q"), List.of(new byte[] {1}, new byte[] {2}));
    assertThat(store.numKeys()).isEqualTo(3);
    assertThat(store.deleteKey("p")).isTrue();
    assertThat(store.deleteKey("p")).isFalse();
    assertThat(store.check(List.of("log", "q"))).isTrue();
    assertThat(store.check(List.of("log", "p"))).isFalse();
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void pytorchsEtcdStoreReadsWhatJavaWroteAndJavaReadsWhatItWrote(Torch torch) {
    torch.require();
    Peers.requirePythonEtcd();
    String prefix = "/t/py-" + torch.version();
    Store store = store(prefix);
    store.set("from_java", "hello from java");
    String script =
        """
        import sys, datetime, etcd
        from torch.distributed.elastic.rendezvous.etcd_store import EtcdStore
        host, port = sys.argv[1].split(":")
        s = EtcdStore(etcd.Client(host, int(port)), sys.argv[2], datetime.timedelta(seconds=30))
        print("python got", s.get("from_java").decode(), flush=True)
        s.set("from_python", "hello from python")
        print("counter", s.add("n", 7), flush=True)
        """;
    try (PythonProcess python =
        PythonProcess.start(torch, script, List.of(etcd.endpoint(), prefix), java.util.Map.of())) {
      python.awaitLine(l -> l.equals("python got hello from java"), Duration.ofSeconds(60));
      assertThat(store.getString("from_python")).isEqualTo("hello from python");
      python.awaitLine(l -> l.equals("counter 7"), Duration.ofSeconds(30));
      assertThat(store.add("n", 1)).isEqualTo(8);
      assertThat(python.awaitExit(Duration.ofSeconds(30))).as(python.output()).isZero();
    }
  }
}
