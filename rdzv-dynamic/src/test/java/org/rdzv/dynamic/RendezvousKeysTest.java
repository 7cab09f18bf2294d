package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.rdzv.dynamic.RendezvousKeys.Own;

/**
 * The key encoding as pure functions: rdzv's own keys are injective across run ids (exhaustively
 * over a small adversarial alphabet, and over random strings), never PyTorch keys, and PyTorch's
 * keys collide only for the run ids {@link RendezvousKeys#pytorchCollision} names.
 */
class RendezvousKeysTest {

  /** Run ids from the issue and every shape that can confuse a key scheme. */
  static final List<String> ADVERSARIAL =
      List.of(
          "job",
          "job.epoch",
          "job.turns",
          "job.signalling",
          "job.changed",
          "job.passed",
          "job.queue",
          "job.turn",
          "job.epoch.epoch",
          "y",
          "y.epoch",
          "a",
          "a.0",
          "a.1",
          "a.0.1",
          "a/b",
          "a/",
          "/a",
          "a//b",
          "a/./b",
          "a/../b",
          "a.0/x",
          "a.0/MASTER_ADDR",
          "0",
          "1",
          "00",
          "1.1",
          ".",
          "..",
          "...",
          "~",
          "~YQ",
          "-",
          "_",
          " ",
          "\t",
          "\u00a0",
          "\u200b",
          "null",
          "None",
          "é",
          "e\u0301",
          "日本",
          "😀",
          "%2F",
          "a%2Fb",
          "rdzv",
          "rdzv/v1/job",
          "torch.rendezvous.job",
          "job/epoch",
          "job.epoch/x",
          "job/changed/1",
          "a\0b",
          "a\n.0/x");

  /** Every string of length 1 to 4 over an alphabet of separators, digits and non-ASCII. */
  static List<String> exhaustive() {
    char[] alphabet = {'a', '.', '/', '0', '~', 'é'};
    List<String> out = new ArrayList<>();
    List<String> layer = List.of("");
    for (int length = 1; length <= 4; length++) {
      List<String> next = new ArrayList<>();
      for (String s : layer) {
        for (char c : alphabet) {
          next.add(s + c);
        }
      }
      out.addAll(next);
      layer = next;
    }
    return out;
  }

  static Set<String> universe() {
    Set<String> ids = new LinkedHashSet<>(ADVERSARIAL);
    ids.addAll(exhaustive());
    return ids;
  }

  record Owned(String runId, Own kind, String tail) {}

  /** Every own key of a run id: each kind, several indexes and names. */
  static Map<String, Owned> ownKeys(String runId, boolean etcd) {
    RendezvousKeys keys = RendezvousKeys.of(runId);
    Map<String, Owned> out = new HashMap<>();
    for (Own kind : Own.values()) {
      if (!kind.hasTail()) {
        out.put(etcd ? keys.etcdOwn(kind) : keys.own(kind), new Owned(runId, kind, null));
        continue;
      }
      for (long i : new long[] {0, 1, 7, 10, 64, 1000}) {
        String key = keys.own(kind, i);
        out.put(etcd ? "/" + key : key, new Owned(runId, kind, "#" + i));
      }
      for (String name : new String[] {"h_1_0", "a/b", "1", "~MQ"}) {
        String key = keys.own(kind, name);
        out.put(etcd ? "/" + key : key, new Owned(runId, kind, name));
      }
    }
    return out;
  }

  @Test
  void ownKeysOfDistinctRunIdsNeverMeet() {
    for (boolean etcd : new boolean[] {false, true}) {
      Map<String, Owned> seen = new HashMap<>();
      for (String runId : universe()) {
        for (var e : ownKeys(runId, etcd).entrySet()) {
          Owned before = seen.putIfAbsent(e.getKey(), e.getValue());
          assertThat(before == null || before.equals(e.getValue()))
              .as("key %s of %s and of %s", e.getKey(), e.getValue(), before)
              .isTrue();
        }
      }
      assertThat(seen).hasSizeGreaterThan(universe().size() * 20);
    }
  }

  @Test
  void theFirstSegmentAfterTheNamespaceNamesTheRunSoNoPrefixIsShared() {
    for (String runId : universe()) {
      for (String key : ownKeys(runId, false).keySet()) {
        assertThat(key).startsWith(RendezvousKeys.OWN_PREFIX);
        String rest = key.substring(RendezvousKeys.OWN_PREFIX.length());
        int slash = rest.indexOf('/');
        assertThat(slash).as(key).isPositive();
        assertThat(RendezvousKeys.decodeRunId(rest.substring(0, slash))).contains(runId);
      }
    }
  }

  @Test
  void ownKeysAreNeverPyTorchKeys() {
    for (String runId : universe()) {
      RendezvousKeys keys = RendezvousKeys.of(runId);
      for (String key : ownKeys(runId, false).keySet()) {
        assertThat(key).doesNotStartWith(RendezvousKeys.PYTORCH_PREFIX);
      }
      for (String key : ownKeys(runId, true).keySet()) {
        assertThat(key).doesNotStartWith("/torch/");
      }
      assertThat(keys.state()).isEqualTo("torch.rendezvous." + runId);
      assertThat(keys.roundPrefix(3)).isEqualTo("torch.rendezvous." + runId + ".3");
      assertThat(keys.state()).doesNotStartWith(RendezvousKeys.OWN_PREFIX);
    }
  }

  @Test
  void theEncodingIsInvertibleHasNoSlashAndNoDotSegments() {
    Random random = new Random(11);
    String pool = "aZ09._-~/%+= \t\0éß日😀";
    List<String> samples = new ArrayList<>(universe());
    for (int i = 0; i < 20_000; i++) {
      StringBuilder b = new StringBuilder();
      int length = 1 + random.nextInt(12);
      while (b.length() < length) {
        b.appendCodePoint(pool.codePointAt(pool.offsetByCodePoints(0, random.nextInt(19))));
      }
      samples.add(b.toString());
    }
    Map<String, String> inverse = new HashMap<>();
    for (String s : samples) {
      String e = RendezvousKeys.encodeRunId(s);
      assertThat(e).doesNotContain("/").isNotIn(".", "..", "");
      assertThat(RendezvousKeys.decodeRunId(e)).as(s).contains(s);
      String before = inverse.putIfAbsent(e, s);
      assertThat(before == null || before.equals(s)).as("%s and %s", s, before).isTrue();
    }
    // Plain run ids stay readable.
    assertThat(RendezvousKeys.of("job.epoch").own(Own.EPOCH)).isEqualTo("rdzv/v1/job.epoch/epoch");
    assertThat(RendezvousKeys.of("job").own(Own.CHANGED, 7)).isEqualTo("rdzv/v1/job/changed/7");
    assertThat(RendezvousKeys.of("a/b").etcdOwn(Own.SIGNAL)).isEqualTo("/rdzv/v1/~YS9i/signal");
    assertThat(RendezvousKeys.of("a").etcdOwnDirectory(Own.TURN_QUEUE))
        .isEqualTo("/rdzv/v1/a/turn_queue");
    // Segments that are not an encoding decode to nothing.
    assertThat(RendezvousKeys.decodeRunId("a/b")).isEmpty();
    assertThat(RendezvousKeys.decodeRunId("~YQ==")).isEmpty();
    // "a" is plain, so "~YQ" (base64url of "a") is no run id's encoding: one encoding per id.
    assertThat(RendezvousKeys.decodeRunId("~YQ")).isEmpty();
    assertThat(RendezvousKeys.decodeRunId("~fg")).contains("~");
  }

  /** Keys PyTorch's agents and rdzv write in a round's store, and keys with dots and slashes. */
  static final List<String> ROUND_KEYS =
      List.of(
          "MASTER_ADDR",
          "MASTER_PORT",
          "torchelastic/role_info/0",
          "torchelastic/assigned_ranks/0",
          "x",
          "x.1/k",
          "0/MASTER_ADDR",
          "b",
          "");

  @Test
  void pytorchKeysCollideOnlyForTheRunIdsItFlags() {
    Map<String, String> owner = new HashMap<>();
    Set<String> colliding = new LinkedHashSet<>();
    for (String runId : universe()) {
      RendezvousKeys keys = RendezvousKeys.of(runId);
      List<String> all = new ArrayList<>();
      all.add(keys.state());
      for (long round = 0; round <= 11; round++) {
        for (String k : ROUND_KEYS) {
          all.add(keys.roundPrefix(round) + "/" + k);
        }
      }
      for (String key : all) {
        String before = owner.putIfAbsent(key, runId);
        if (before != null && !before.equals(runId)) {
          colliding.add(before + " | " + runId);
          assertThat(
                  RendezvousKeys.pytorchCollision(before).isPresent()
                      || RendezvousKeys.pytorchCollision(runId).isPresent())
              .as("run ids %s and %s share the PyTorch key %s, unflagged", before, runId, key)
              .isTrue();
        }
      }
    }
    // The scheme does collide (this is PyTorch's), and the flag is not raised for plain ids.
    assertThat(colliding).isNotEmpty();
    assertThat(RendezvousKeys.pytorchCollision("job.epoch")).isEmpty();
    assertThat(RendezvousKeys.pytorchCollision("a/b")).isEmpty();
    assertThat(RendezvousKeys.pytorchCollision("1.1")).isEmpty();
  }

  @Test
  void theFlagNamesARealCollision() {
    for (String runId : universe()) {
      Optional<String> flag = RendezvousKeys.pytorchCollision(runId);
      if (flag.isEmpty()) {
        continue;
      }
      var m =
          java.util.regex.Pattern.compile("^(.+?)\\.(\\d+)/(.*)$", java.util.regex.Pattern.DOTALL)
              .matcher(runId);
      assertThat(m.find()).isTrue();
      String other = m.group(1);
      long round = Long.parseLong(m.group(2));
      String rest = m.group(3);
      // The state key of this run is key <rest> of round <n> of the other run.
      assertThat(RendezvousKeys.of(runId).state())
          .isEqualTo(RendezvousKeys.of(other).roundPrefix(round) + "/" + rest);
      assertThat(flag.get()).contains("'" + other + "'").contains("round " + m.group(2));
    }
    assertThat(RendezvousKeys.pytorchCollision("a.0/MASTER_ADDR").orElseThrow())
        .contains("round 0 of the run id 'a'");
  }

  @Test
  void runIdsWithoutAUtf8FormAreRefused() {
    assertThatThrownBy(() -> RendezvousKeys.of("a\uD800"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("unpaired surrogate U+D800 at index 1");
    assertThatThrownBy(() -> RendezvousKeys.of("\uDC00b"))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> RendezvousKeys.of(""))
        .hasMessage("The run id must be a non-empty string.");
    assertThat(RendezvousKeys.of("😀").runId()).isEqualTo("😀");
  }
}
