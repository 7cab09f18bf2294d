package org.rdzv.api;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.rdzv.testing.Peers;

/**
 * Our parameters, endpoint and config parsing against PyTorch 1.13's own functions, case by case.
 *
 * <p>The table {@code pytorch/api_rules.tsv} was produced by running {@code pytorch/api_rules.py}
 * with PyTorch 1.13; {@link #committedTableIsWhatPyTorchProducesToday()} re-runs it where PyTorch
 * is installed (always on CI), so the table cannot drift from PyTorch.
 */
class PyTorchRulesTest {
  /**
   * Where we differ from PyTorch on purpose: Python's int() has no upper bound; our integer options
   * are Java ints, so an absurd value is refused with the usual message.
   */
  private static final Map<String, String> KNOWN_DIFFERENCES =
      Map.of(
          "get_as_int\tstr:99999999999",
          "ValueError\tThe rendezvous configuration option 'opt' does not represent a valid integer value.");

  record Case(String function, String input, String outcome, String result) {
    @Override
    public String toString() {
      return function + "(" + input + ")";
    }
  }

  static Stream<Case> cases() throws IOException {
    try (InputStream in = PyTorchRulesTest.class.getResourceAsStream("/pytorch/api_rules.tsv")) {
      return parse(new String(in.readAllBytes(), StandardCharsets.UTF_8)).stream();
    }
  }

  static List<Case> parse(String table) {
    List<Case> cases = new ArrayList<>();
    for (String line : table.split("\n")) {
      if (line.isEmpty()) {
        continue;
      }
      String[] f = line.split("\t", -1);
      cases.add(new Case(f[0], unescape(f[1]), f[2], unescape(f[3])));
    }
    return cases;
  }

  static String unescape(String text) {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c == '\\' && i + 1 < text.length()) {
        char n = text.charAt(++i);
        out.append(n == 't' ? '\t' : n == 'n' ? '\n' : n);
      } else {
        out.append(c);
      }
    }
    return out.toString();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("cases")
  void behavesAsPyTorch(Case c) {
    String actual = run(c);
    String expected =
        KNOWN_DIFFERENCES.getOrDefault(c.function + "\t" + c.input, c.outcome + "\t" + c.result);
    assertThat(actual).as(c.toString()).isEqualTo(expected);
  }

  @Test
  void tableCoversEveryRuleFamily() throws IOException {
    assertThat(cases().map(Case::function).collect(Collectors.toSet()))
        .containsExactlyInAnyOrder(
            "endpoint", "config", "get_as_bool", "get_as_int", "parameters", "registry");
    assertThat(cases().filter(c -> !c.outcome.equals("ok")).count()).isGreaterThan(30);
  }

  @Test
  void committedTableIsWhatPyTorchProducesToday() throws Exception {
    Peers.requireTorch();
    Path script = Files.createTempFile("api_rules", ".py");
    try (InputStream in = getClass().getResourceAsStream("/pytorch/api_rules.py")) {
      Files.write(script, in.readAllBytes());
    }
    Process p =
        new ProcessBuilder(Peers.PYTHON, script.toString())
            .redirectError(ProcessBuilder.Redirect.INHERIT)
            .start();
    String live = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).isZero();
    assertThat(parse(live)).containsExactlyElementsOf(cases().toList());
  }

  private static String run(Case c) {
    return switch (c.function) {
      case "endpoint" ->
          outcome(
              () -> {
                Endpoint e =
                    Endpoint.parse(value(c.input) == null ? null : c.input.substring(4), 29400);
                return e.host() + "|" + e.port();
              });
      case "config" ->
          outcome(
              () ->
                  RendezvousConfig.parse(c.input.substring(4)).entrySet().stream()
                      .map(e -> e.getKey() + "=" + e.getValue())
                      .collect(Collectors.joining(",")));
      case "get_as_bool" -> outcome(() -> python(params(value(c.input)).getAsBool("opt")));
      case "get_as_int" -> outcome(() -> python(params(value(c.input)).getAsInt("opt")));
      case "parameters" ->
          outcome(
              () -> {
                String[] f = c.input.split("\\|", -1);
                RendezvousParameters p =
                    new RendezvousParameters(
                        f[0], "", "", Integer.parseInt(f[1]), Integer.parseInt(f[2]));
                return p.backend() + "|" + p.minNodes() + "|" + p.maxNodes();
              });
      case "registry" -> registryCase(c.input);
      default -> throw new AssertionError("unknown function " + c.function);
    };
  }

  /** The registry scenarios of api_rules.py, one fresh registry each. */
  private static String registryCase(String name) {
    RendezvousHandlerCreator one = new NamedCreator("mine");
    RendezvousHandlerCreator two = new NamedCreator("mine");
    RendezvousRegistry r = new RendezvousRegistry();
    return switch (name) {
      case "register-empty-name" -> outcome(() -> register(r, "", one));
      case "register-same-twice" ->
          outcome(() -> register(r, "mine", one) + register(r, "mine", one).substring(10));
      case "register-other-creator" ->
          outcome(() -> register(r, "mine", one) + register(r, "mine", two))
              .replace(one.toString(), "<creator>")
              .replace(two.toString(), "<creator>");
      case "create-unknown" -> outcome(() -> register(r, "mine", one) + create(r, "yours"));
      case "create-registered" -> outcome(() -> create(register(r, "mine", one), r, "mine"));
      case "create-name-mismatch" -> outcome(() -> create(register(r, "other", one), r, "other"));
      case "create-case-sensitive" -> outcome(() -> create(register(r, "mine", one), r, "MINE"));
      default -> throw new AssertionError(name);
    };
  }

  private static String register(RendezvousRegistry r, String name, RendezvousHandlerCreator c) {
    r.register(name, c);
    return "registered";
  }

  private static String create(RendezvousRegistry r, String backend) {
    return r.create(new RendezvousParameters(backend, "", "run", 1, 1)).backend();
  }

  private static String create(String ignored, RendezvousRegistry r, String backend) {
    return create(r, backend);
  }

  /** A creator whose handlers report {@code name} as their backend; equal only to itself. */
  record NamedCreator(String name) implements RendezvousHandlerCreator {
    @Override
    public RendezvousHandler create(RendezvousParameters parameters) {
      return new TestHandlers.Named(name);
    }

    @Override
    public boolean equals(Object other) {
      return this == other;
    }

    @Override
    public int hashCode() {
      return System.identityHashCode(this);
    }

    @Override
    public String toString() {
      return "creator@" + Integer.toHexString(System.identityHashCode(this));
    }
  }

  private static RendezvousParameters params(Object value) {
    java.util.HashMap<String, Object> config = new java.util.HashMap<>();
    config.put("opt", value);
    return new RendezvousParameters("c10d", "localhost", "run", 1, 1, null, config);
  }

  /** Decodes {@code type:text} as written by api_rules.py. */
  private static Object value(String typed) {
    int colon = typed.indexOf(':');
    String type = typed.substring(0, colon);
    String text = typed.substring(colon + 1);
    return switch (type) {
      case "none" -> null;
      case "bool" -> Boolean.parseBoolean(text);
      case "int" -> Integer.parseInt(text);
      case "float" -> Double.parseDouble(text);
      case "str" -> text;
      default -> throw new AssertionError(typed);
    };
  }

  private static String python(Object value) {
    if (value == null) {
      return "None";
    }
    if (value instanceof Boolean b) {
      return b ? "True" : "False";
    }
    return value.toString();
  }

  private static String outcome(Supplier<String> call) {
    try {
      return "ok\t" + call.get();
    } catch (IllegalArgumentException e) {
      return "ValueError\t" + e.getMessage();
    } catch (IllegalStateException e) {
      return "RuntimeError\t" + e.getMessage();
    }
  }
}
