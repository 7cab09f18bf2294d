package org.rdzv.api;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

class PrefixStoreTest {
  /** Records the keys the underlying store sees (pure logic: no blocking, no network). */
  static final class RecordingStore implements Store {
    final Map<String, byte[]> data = new TreeMap<>();
    final List<String> keysSeen = new ArrayList<>();

    private String seen(String key) {
      keysSeen.add(key);
      return key;
    }

    @Override
    public void set(String key, byte[] value) {
      data.put(seen(key), value);
    }

    @Override
    public byte[] get(String key) {
      return data.get(seen(key));
    }

    @Override
    public long add(String key, long delta) {
      byte[] old = data.get(seen(key));
      long value =
          (old == null ? 0 : Long.parseLong(new String(old, StandardCharsets.UTF_8))) + delta;
      data.put(key, Long.toString(value).getBytes(StandardCharsets.UTF_8));
      return value;
    }

    @Override
    public byte[] compareSet(String key, byte[] expected, byte[] desired) {
      seen(key);
      return desired;
    }

    @Override
    public boolean check(List<String> keys) {
      keys.forEach(this::seen);
      return data.keySet().containsAll(keys);
    }

    @Override
    public void await(List<String> keys, Duration timeout) {
      keys.forEach(this::seen);
    }

    @Override
    public long numKeys() {
      return data.size();
    }

    @Override
    public boolean deleteKey(String key) {
      return data.remove(seen(key)) != null;
    }

    @Override
    public void append(String key, byte[] value) {
      seen(key);
    }

    @Override
    public List<byte[]> multiGet(List<String> keys) {
      return keys.stream().map(k -> data.get(seen(k))).toList();
    }

    @Override
    public void multiSet(List<String> keys, List<byte[]> values) {
      for (int i = 0; i < keys.size(); i++) {
        data.put(seen(keys.get(i)), values.get(i));
      }
    }

    @Override
    public Duration timeout() {
      return Duration.ofSeconds(1);
    }

    @Override
    public void setTimeout(Duration timeout) {}

    @Override
    public void close() {}
  }

  @Test
  void joinsPrefixAndKeyWithASlashAndNestedPrefixesConcatenate() {
    RecordingStore base = new RecordingStore();
    // As torch.distributed does: PrefixStore("default_pg") around PrefixStore(group "0").
    Store store = new PrefixStore("0", new PrefixStore("default_pg", base));
    store.set("rank_1", "vm");
    store.add("store_based_barrier_key:1", 1);
    store.check(List.of("a", "b"));
    store.multiSet(List.of("m"), List.of(new byte[] {1}));
    assertThat(base.keysSeen)
        .containsExactly(
            "default_pg/0/rank_1",
            "default_pg/0/store_based_barrier_key:1",
            "default_pg/0/a",
            "default_pg/0/b",
            "default_pg/0/m");
  }

  @Test
  void numKeysCountsTheWholeStoreAndCloseLeavesItOpen() {
    RecordingStore base = new RecordingStore();
    base.set("outside", new byte[0]);
    PrefixStore store = new PrefixStore("torch.rendezvous.r.0", base);
    store.set("MASTER_ADDR", "h");
    assertThat(store.numKeys()).isEqualTo(2);
    store.close();
    assertThat(base.get("torch.rendezvous.r.0/MASTER_ADDR"))
        .isEqualTo("h".getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void storeInfoIsPublishedByRankZeroAndReadByEveryone() {
    RecordingStore base = new RecordingStore();
    PrefixStore round = new PrefixStore("torch.rendezvous.r.3", base);
    RendezvousStoreInfo info = RendezvousStoreInfo.build(0, round, "10.1.2.3", 29555);
    assertThat(info).isEqualTo(new RendezvousStoreInfo("10.1.2.3", 29555));
    assertThat(base.data)
        .containsKeys("torch.rendezvous.r.3/MASTER_ADDR", "torch.rendezvous.r.3/MASTER_PORT");
    assertThat(RendezvousStoreInfo.build(1, round, "ignored", null)).isEqualTo(info);
  }
}
