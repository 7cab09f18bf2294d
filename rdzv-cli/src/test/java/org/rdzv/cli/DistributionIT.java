package org.rdzv.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.rdzv.testing.ChildProcess;
import org.rdzv.testing.EtcdProcess;
import org.rdzv.testing.Peers;

/**
 * The distribution as a user gets it: {@code rdzv-<version>.tar.gz}, extracted with tar into an
 * empty directory away from the source tree, run with only a JDK. Runs in {@code verify}, after
 * {@code package} built the tarball (failsafe), so a jar missing from {@code lib/} fails here and
 * not on a user's machine.
 */
class DistributionIT {
  private static final Duration LIMIT = Duration.ofSeconds(120);
  private static final Pattern RANK = Pattern.compile("rank=(\\d+) world_size=2 .*");

  @TempDir static Path unpacked;
  private static Path rdzv;

  @BeforeAll
  static void extract() throws Exception {
    Path tarball = Path.of(System.getProperty("rdzv.distribution", "missing"));
    assertThat(tarball).as("the distribution built by package").isRegularFile();
    Process tar =
        new ProcessBuilder("tar", "-xzf", tarball.toString(), "-C", unpacked.toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(tar.getInputStream().readAllBytes());
    assertThat(tar.waitFor()).as(out).isZero();
    rdzv = unpacked.resolve("rdzv-" + System.getProperty("rdzv.version") + "/bin/rdzv");
    assertThat(rdzv).isExecutable();
  }

  private static ChildProcess start(String... args) {
    List<String> command = new ArrayList<>(List.of(rdzv.toString()));
    command.addAll(List.of(args));
    // Only a JDK: the one running this test, found through JAVA_HOME as a user's would be.
    return ChildProcess.start(command, Map.of("JAVA_HOME", System.getProperty("java.home")));
  }

  private static ChildProcess finished(ChildProcess p) {
    assertThat(p.awaitExit(LIMIT)).as(p.output()).isZero();
    return p;
  }

  @Test
  void holdsTheToolItsDocsAndEveryJarItNeeds() throws IOException {
    Path root = rdzv.getParent().getParent();
    assertThat(root.resolve("LICENSE")).isRegularFile();
    assertThat(root.resolve("README.md")).isRegularFile();
    assertThat(root.resolve("docs/scaling.md")).isRegularFile();
    assertThat(root.resolve("lib/rdzv-cli-" + System.getProperty("rdzv.version") + ".jar"))
        .isRegularFile();
    try (var jars = Files.list(root.resolve("lib"))) {
      assertThat(jars.map(p -> p.getFileName().toString()))
          .anyMatch(n -> n.startsWith("jetcd-core-"))
          .anyMatch(n -> n.startsWith("jackson-databind-"))
          .anyMatch(n -> n.startsWith("picocli-"))
          .noneMatch(n -> n.startsWith("junit-") || n.startsWith("assertj-"));
    }
  }

  @Test
  void printsItsVersion() {
    try (ChildProcess p = finished(start("--version"))) {
      assertThat(p.output()).contains(System.getProperty("rdzv.version"));
    }
  }

  @Test
  void runsAStandaloneJob() {
    try (ChildProcess p =
        finished(start("run", "--standalone", "--nproc-per-node", "2", "--no-python", "true"))) {
      assertThat(p.output()).doesNotContain("NoClassDefFoundError", "ClassNotFoundException");
    }
  }

  @Test
  void joinsOverEtcdV2AndEtcdV3() {
    Peers.requireEtcdServer();
    try (EtcdProcess etcd = EtcdProcess.start()) {
      // etcd-v2 reads JSON (Jackson); etcd-v3 is gRPC over Netty (jetcd) with the scalable
      // protocol.
      for (String[] backend :
          List.of(
              new String[] {"etcd-v2", "join_timeout=60"},
              new String[] {"etcd-v3", "join_timeout=60,rendezvous_protocol=scalable"})) {
        String runId = "dist-" + UUID.randomUUID();
        List<ChildProcess> nodes = new ArrayList<>();
        try {
          for (int i = 0; i < 2; i++) {
            nodes.add(
                start(
                    "join",
                    "--nnodes",
                    "2",
                    "--rdzv-backend",
                    backend[0],
                    "--rdzv-endpoint",
                    etcd.endpoint(),
                    "--rdzv-id",
                    runId,
                    "--rdzv-conf",
                    backend[1]));
          }
          List<String> ranks = new ArrayList<>();
          for (ChildProcess node : nodes) {
            finished(node);
            String line =
                node.lines().stream().filter(l -> RANK.matcher(l).matches()).findFirst().orElse("");
            assertThat(line).as(backend[0] + ": " + node.output()).isNotEmpty();
            ranks.add(line.substring(0, line.indexOf(' ')));
          }
          assertThat(ranks).as(backend[0]).containsExactlyInAnyOrder("rank=0", "rank=1");
        } finally {
          nodes.forEach(ChildProcess::close);
        }
      }
    }
  }
}
