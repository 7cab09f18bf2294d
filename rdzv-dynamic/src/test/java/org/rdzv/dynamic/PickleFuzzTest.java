package org.rdzv.dynamic;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.Random;
import org.junit.jupiter.api.Test;
import org.rdzv.api.RendezvousStateException;

/** Mutated and truncated pickles decode or fail with a state error — never anything else. */
class PickleFuzzTest {
  @Test
  void mutationsNeverEscapeAsAnythingButAStateError() {
    Random random = new Random(20261126);
    int decoded = 0;
    int refused = 0;
    for (String name : new String[] {"a", "b", "c", "p3", "d"}) {
      byte[] golden = StateCodecGoldenTest.golden(name);
      for (int i = 0; i < 3000; i++) {
        byte[] b = golden.clone();
        int edits = 1 + random.nextInt(4);
        for (int e = 0; e < edits; e++) {
          int at = random.nextInt(b.length);
          switch (random.nextInt(3)) {
            case 0 -> b[at] = (byte) random.nextInt(256);
            case 1 -> b[at] = (byte) (b[at] ^ (1 << random.nextInt(8)));
            default -> b = java.util.Arrays.copyOf(b, Math.max(1, at));
          }
        }
        try {
          StateCodec.decode(b);
          decoded++;
        } catch (RendezvousStateException expected) {
          refused++;
        } catch (RuntimeException | StackOverflowError | OutOfMemoryError e) {
          throw new AssertionError("mutation " + i + " of " + name + " escaped as " + e, e);
        }
      }
    }
    assertThat(refused).isGreaterThan(1000);
    assertThat(decoded + refused).isEqualTo(5 * 3000);
  }
}
