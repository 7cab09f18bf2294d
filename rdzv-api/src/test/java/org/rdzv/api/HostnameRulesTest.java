package org.rdzv.api;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.InputStream;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.rdzv.testing.Peers;

/** is_host inference: the answer PyTorch 1.13 gives on this very machine, host by host. */
class HostnameRulesTest {
  @Test
  void matchesMachineHostnameAgreesWithPyTorchOnThisMachine() throws Exception {
    Peers.requireTorch();
    String hostname = InetAddress.getLocalHost().getHostName();
    List<String> hosts =
        new ArrayList<>(
            List.of(
                "localhost",
                "127.0.0.1",
                "127.1.2.3",
                "::1",
                hostname,
                "8.8.8.8",
                "no-such-host.invalid",
                "10.255.255.254",
                "LOCALHOST"));
    for (InetAddress address : InetAddress.getAllByName(hostname)) {
      hosts.add(address.getHostAddress());
    }
    hosts = new ArrayList<>(new java.util.LinkedHashSet<>(hosts));
    Path script = Files.createTempFile("hostname_rules", ".py");
    try (InputStream in = getClass().getResourceAsStream("/pytorch/hostname_rules.py")) {
      Files.write(script, in.readAllBytes());
    }
    List<String> command = new ArrayList<>(List.of(Peers.PYTHON, script.toString()));
    command.addAll(hosts);
    Process p = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(120, TimeUnit.SECONDS)).isTrue();
    Map<String, String> pytorch = new LinkedHashMap<>();
    output.lines().map(l -> l.split("\t")).forEach(f -> pytorch.put(f[0], f[1]));
    assertThat(pytorch).hasSize(hosts.size());
    assertThat(pytorch).containsEntry("localhost", "True").containsEntry("8.8.8.8", "False");
    for (String host : hosts) {
      String ours = RendezvousConfig.matchesMachineHostname(host) ? "True" : "False";
      assertThat(ours).as(host).isEqualTo(pytorch.get(host));
    }
  }
}
