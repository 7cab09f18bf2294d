package org.rdzv.launcher;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.rdzv.api.RendezvousParameters;

/** What {@link Launcher} adds around an agent: closing the rendezvous as torchrun does. */
@Timeout(60)
class LauncherTest {
  private final SingleNodeHandler handler = new SingleNodeHandler("launchertest");
  private final RendezvousParameters params =
      new RendezvousParameters("test", "", "launchertest", 1, 1);

  @AfterEach
  void close() {
    handler.close();
  }

  @Test
  void aSuccessfulRunClosesTheRendezvous() {
    RunResult r =
        Launcher.launch(LaunchConfig.builder(params, List.of("true")).build(), handler, null);
    assertThat(r.isSuccess()).isTrue();
    assertThat(handler.shutDown).isTrue();
  }

  @Test
  void aFailedRunClosesTheRendezvousToo() {
    RunResult r =
        Launcher.launch(
            LaunchConfig.builder(params, List.of("false"))
                .stopTimeout(Duration.ofSeconds(1))
                .build(),
            handler,
            null);
    assertThat(r.state()).isEqualTo(WorkerState.FAILED);
    assertThat(r.failures().get(0).exitCode()).isEqualTo(1);
    assertThat(handler.shutDown).isTrue();
  }

  @Test
  void anAgentErrorClosesTheRendezvousAndIsRethrown() {
    LaunchConfig config = LaunchConfig.builder(params, List.of("/nonexistent/program")).build();
    assertThatThrownBy(() -> Launcher.launch(config, handler, null))
        .isInstanceOf(UncheckedIOException.class)
        .hasMessageContaining("cannot start worker program /nonexistent/program");
    assertThat(handler.shutDown).isTrue();
  }
}
