package org.rdzv.api.events;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;
import org.rdzv.api.internal.Json;

/**
 * Events as PyTorch serializes them: every line of event logs captured from torchrun 1.13 and 2.6
 * (a standalone job whose worker fails once, is restarted and fails again) is rebuilt as a Java
 * event and must serialize to the same bytes.
 */
class EventsTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  @ParameterizedTest
  @ValueSource(
      strings = {
        "torch1.13-standalone-restart.jsonl",
        "torch2.6-standalone-restart.jsonl",
      })
  void everyEventPyTorchRecordedSerializesToTheSameLine(String file) throws IOException {
    List<String> lines = resourceLines(file);
    assertThat(lines).hasSizeGreaterThan(20);
    for (String line : lines) {
      @SuppressWarnings("unchecked")
      Map<String, Object> m = JSON.readValue(line, LinkedHashMap.class);
      ElasticEvent event = m.containsKey("node_state") ? rdzvEvent(m) : event(m);
      assertThat(event.serialize()).isEqualTo(line);
    }
  }

  private static RdzvEvent rdzvEvent(Map<String, Object> m) {
    return new RdzvEvent(
        (String) m.get("name"),
        (String) m.get("run_id"),
        (String) m.get("message"),
        (String) m.get("hostname"),
        ((Number) m.get("pid")).longValue(),
        NodeState.valueOf((String) m.get("node_state")),
        (String) m.get("master_endpoint"),
        (Integer) m.get("rank"),
        m.get("local_id") == null ? null : ((Number) m.get("local_id")).longValue(),
        (String) m.get("error_trace"));
  }

  @SuppressWarnings("unchecked")
  private static Event event(Map<String, Object> m) {
    return new Event(
        (String) m.get("name"),
        EventSource.valueOf((String) m.get("source")),
        ((Number) m.get("timestamp")).longValue(),
        (Map<String, Object>) m.get("metadata"));
  }

  @ParameterizedTest
  @CsvSource({
    "3.0, 3.0",
    "0.4685679996327963, 0.4685679996327963",
    "301.12961800023186, 301.12961800023186",
    "0.0001, 0.0001",
    "0.00001, 1e-05",
    "-0.000015, -1.5e-05",
    "1e16, 1e+16",
    "1.5e16, 1.5e+16",
    "9999999999999998.0, 9999999999999998.0",
    "12345678.9, 12345678.9",
    "0.0, 0.0",
  })
  void floatsAreWrittenAsPythonsRepr(double value, String python) {
    assertThat(Json.pythonFloat(value)).isEqualTo(python);
  }

  @Test
  void textIsEscapedAsJsonDumpsDoes() {
    RdzvEvent e =
        new RdzvEvent(
            "n", "r\u00e9", "a \"b\"\n\tc\\", "h", 1, NodeState.FAILED, null, null, null, null);
    assertThat(e.serialize())
        .isEqualTo(
            "{\"name\": \"n\", \"run_id\": \"r\\u00e9\", \"message\": \"a \\\"b\\\"\\n\\tc\\\\\","
                + " \"hostname\": \"h\", \"pid\": 1, \"node_state\": \"FAILED\","
                + " \"master_endpoint\": \"\", \"rank\": null, \"local_id\": null,"
                + " \"error_trace\": \"\"}");
  }

  @Test
  void metadataTakesOnlyPyTorchsValueTypes() {
    assertThatThrownBy(
            () -> new Event("e", EventSource.AGENT, 0, Map.of("when", java.time.Instant.EPOCH)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("'when'");
  }

  @Test
  void theTraceNamesTheErrorItsFramesAndItsCause() {
    RuntimeException e = new RuntimeException("outer", new IllegalStateException("inner"));
    String trace = RdzvEvent.trace(e);
    assertThat(trace)
        .startsWith("java.lang.RuntimeException: outer\n\tat ")
        .contains("Caused by: java.lang.IllegalStateException: inner\n\tat ")
        .contains("EventsTest.theTraceNamesTheErrorItsFramesAndItsCause");
    assertThat(RdzvEvent.trace(null)).isEmpty();
  }

  @Test
  void eventsReachEveryRecorderAndAFailingOneDoesNotStopThem() {
    List<ElasticEvent> seen = new CopyOnWriteArrayList<>();
    EventRecorder failing =
        e -> {
          throw new IllegalStateException("full");
        };
    EventRecorder keeping = seen::add;
    assertThat(Events.enabled()).isFalse();
    Events.add(failing);
    Events.add(keeping);
    try {
      assertThat(Events.enabled()).isTrue();
      Event e = new Event("torchelastic.worker.status.SUCCEEDED", EventSource.AGENT, 5, Map.of());
      Events.record(e);
      assertThat(seen).containsExactly(e);
    } finally {
      Events.remove(failing);
      Events.remove(keeping);
    }
    assertThat(Events.enabled()).isFalse();
  }

  @Test
  void theEventLogAppendsOneLineAnEventAndFlushesIt(@TempDir Path dir) throws IOException {
    Path file = dir.resolve("sub/events.jsonl");
    List<String> expected = new ArrayList<>();
    try (EventLog log = EventLog.open(file)) {
      for (int i = 0; i < 3; i++) {
        Event e = new Event("e" + i, EventSource.WORKER, i, Map.of("i", i));
        log.record(e);
        expected.add(e.serialize());
        // Flushed at once: a reader sees every event recorded so far.
        assertThat(Files.readAllLines(file)).containsExactlyElementsOf(expected);
      }
    }
    try (EventLog again = EventLog.open(file)) {
      again.record(new Event("more", EventSource.AGENT, 0, Map.of()));
    }
    assertThat(Files.readAllLines(file)).hasSize(4);
  }

  private static List<String> resourceLines(String name) throws IOException {
    try (InputStream in = EventsTest.class.getResourceAsStream("/events/" + name)) {
      assertThat(in).as(name).isNotNull();
      return new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().toList();
    }
  }
}
