package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.rdzv.testing.PythonProcess;
import org.rdzv.testing.Torch;

/**
 * Real CPython (3.11 with torch 1.13, 3.13 with torch 2.6) pickles states of every shape, dialect
 * and protocol (2–5) and we decode them; we pickle the same shapes and CPython unpickles them (the
 * dialect of that torch with its own classes, as a torch node does: 1.13 for 1.13, 2.0-2.5 and 2.6+
 * for 2.6).
 */
class PythonPickleInteropTest {
  static final DateTimeFormatter STAMP =
      DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSSSSS");
  static final String SCRIPT =
      PythonProcess.resource(PythonPickleInteropTest.class, "/py/pickles.py");

  static String stamp(Instant t) {
    return LocalDateTime.ofInstant(t, ZoneOffset.UTC).format(STAMP);
  }

  /** The same one-line summary pickles.py prints. */
  static String summary(MutableState s) {
    StateDialect d = s.dialect;
    boolean hasNodes =
        !s.participants.isEmpty()
            || !s.waitList.isEmpty()
            || !s.lastHeartbeats.isEmpty()
            || !s.redundancyList.isEmpty();
    boolean hasStamps = !s.lastHeartbeats.isEmpty() || s.deadline != null;
    return String.join(
        ";",
        "round=" + s.round,
        "complete=" + py(s.complete),
        "closed=" + py(s.closed),
        "deadline=" + (s.deadline == null ? "None" : stamp(s.deadline)),
        "participants="
            + sorted(
                s.participants.entrySet().stream()
                    .map(e -> e.getKey() + ":" + e.getValue())
                    .toList()),
        "wait=" + sorted(s.waitList.stream().map(NodeDescriptor::toString).toList()),
        "redundancy="
            + (d != null && d.redundancyList()
                ? sorted(s.redundancyList.stream().map(NodeDescriptor::toString).toList())
                : "absent"),
        "heartbeats="
            + sorted(
                s.lastHeartbeats.entrySet().stream()
                    .map(e -> e.getKey() + "@" + stamp(e.getValue()))
                    .toList()),
        "aware=" + py(hasStamps && d == StateDialect.V2_6),
        "field=" + (hasNodes ? d.nodeField() : "none"));
  }

  static String py(boolean b) {
    return b ? "True" : "False";
  }

  static String sorted(List<String> items) {
    return items.stream()
        .sorted(NodeDescriptor::compareCodePoints)
        .collect(Collectors.joining(","));
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void weDecodeWhatPythonPicklesInEveryDialectAndProtocol(Torch torch) {
    torch.require();
    try (PythonProcess py = PythonProcess.start(torch, SCRIPT, List.of("dump"), Map.of())) {
      assertThat(py.awaitExit(Duration.ofSeconds(120))).as(py.output()).isZero();
      int checked = 0;
      for (String line : py.lines()) {
        String[] f = line.split(" ", 4);
        MutableState s = StateCodec.decode(Base64.getDecoder().decode(f[2]));
        assertThat(summary(s)).as(f[0] + " protocol " + f[1]).isEqualTo(f[3]);
        checked++;
      }
      assertThat(checked).isEqualTo(3 * 4 * 4);
    }
  }

  static Map<String, MutableState> javaStates() {
    Map<String, MutableState> out = new LinkedHashMap<>();
    Instant t0 = Instant.parse("2024-01-02T03:04:05.678901Z");
    for (StateDialect d : StateDialect.values()) {
      String name = d.label() + (d == StateDialect.V1_13 ? "" : "-addr");
      NodeDescriptor a = new NodeDescriptor("node-a.example", 1234, 0);
      NodeDescriptor b = new NodeDescriptor("node9", 5678, 0);
      NodeDescriptor c = new NodeDescriptor("node10", 910, 1);
      NodeDescriptor e = new NodeDescriptor("h\u00e9te", (1L << 31) + 5, 70000);
      MutableState empty = new MutableState();
      empty.dialect = d;
      out.put(name + "-empty", empty);
      MutableState joining = new MutableState();
      joining.dialect = d;
      joining.participants.put(a, 0);
      joining.participants.put(b, 0);
      joining.lastHeartbeats.put(a, t0);
      joining.lastHeartbeats.put(b, t0.plusSeconds(1));
      joining.deadline = t0.plusSeconds(30);
      out.put(name + "-joining", joining);
      MutableState complete = new MutableState();
      complete.dialect = d;
      complete.round = 300;
      complete.complete = true;
      complete.closed = true;
      complete.participants.put(a, 0);
      complete.participants.put(b, 1);
      complete.participants.put(c, 2);
      complete.waitList.add(e);
      for (NodeDescriptor n : List.of(a, b, c, e)) {
        complete.lastHeartbeats.put(n, t0.plusSeconds(complete.lastHeartbeats.size()));
      }
      if (d.redundancyList()) {
        NodeDescriptor spare = new NodeDescriptor("spare", 1, 1);
        complete.redundancyList.add(spare);
        complete.lastHeartbeats.put(spare, t0.plusSeconds(4));
      }
      out.put(name + "-complete", complete);
      MutableState large = new MutableState();
      large.dialect = d;
      for (int i = 0; i < 1200; i++) {
        NodeDescriptor n = new NodeDescriptor("host" + i, 1000 + i, i);
        large.participants.put(n, i);
        large.lastHeartbeats.put(n, t0.plusSeconds(i));
        if (i <= 1000) {
          large.waitList.add(n);
        }
      }
      out.put(name + "-large", large);
    }
    return out;
  }

  @ParameterizedTest
  @EnumSource(Torch.class)
  void pythonUnpicklesWhatWeWrite(Torch torch) throws Exception {
    torch.require();
    Map<String, MutableState> states = javaStates();
    try (PythonProcess py = PythonProcess.start(torch, SCRIPT, List.of("load"), Map.of())) {
      try (OutputStream in = py.process().getOutputStream()) {
        for (var e : states.entrySet()) {
          byte[] pickle = StateCodec.encode(e.getValue(), e.getValue().dialect);
          in.write(
              (e.getKey() + " " + Base64.getEncoder().encodeToString(pickle) + "\n")
                  .getBytes(StandardCharsets.US_ASCII));
        }
      }
      py.awaitLine("done"::equals, Duration.ofSeconds(120));
      List<String> mismatches = new ArrayList<>();
      for (String line : py.lines()) {
        if (line.equals("done")) {
          continue;
        }
        String[] f = line.split(" ", 2);
        MutableState s = states.get(f[0]);
        String expected = summary(s);
        if (!expected.equals(f[1])) {
          mismatches.add(f[0] + "\n  java:   " + expected + "\n  python: " + f[1]);
        }
      }
      assertThat(mismatches).isEmpty();
      assertThat(py.lines()).hasSize(states.size() + 1);
    }
  }
}
