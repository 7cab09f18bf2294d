/*
 * A Java worker, launched by `rdzv run` like a PyTorch one: it reads its rank from the
 * environment the agent sets, joins the workers' store, and sums rank+1 over all workers.
 *
 *   bin/rdzv run --standalone --nproc-per-node 2 examples/StoreSum.java
 *
 * rdzv runs a .java program as a single-file source program on its own JVM, with rdzv on the
 * class path. Without rdzv's help (any JDK 21+, class path of a built clone):
 *
 *   bin/rdzv run --standalone --nproc-per-node 2 --no-python \
 *       /path/to/jdk-21/bin/java -cp "rdzv-cli/target/rdzv-cli.jar:rdzv-cli/target/lib/*" examples/StoreSum.java
 */
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.rdzv.api.Store;
import org.rdzv.worker.ErrorFile;
import org.rdzv.worker.WorkerContext;

public class StoreSum {
  public static void main(String[] args) {
    ErrorFile.record(StoreSum::run); // a failure's stack trace reaches the agent's summary
  }

  static void run() {
    WorkerContext ctx = WorkerContext.fromEnvironment();
    try (Store store = ctx.connectStore(Duration.ofSeconds(60))) {
      store.add("sum", ctx.rank() + 1);
      long arrived = store.add("arrived", 1);
      if (arrived == ctx.worldSize()) {
        store.set("done", "yes");
      }
      store.await(List.of("done"));
      long sum = store.add("sum", 0);
      long expected = (long) ctx.worldSize() * (ctx.worldSize() + 1) / 2;
      // One write per line, so that the workers' lines do not interleave on a shared terminal.
      System.out.print(
          String.format(
              "rank %d/%d (local %d, node %d, restart %d): store sum = %d, expected %d%n",
              ctx.rank(), ctx.worldSize(), ctx.localRank(), ctx.groupRank(), ctx.restartCount(),
              sum, expected));
      System.out.flush();
      if (sum != expected) {
        throw new IllegalStateException("store sum " + sum + ", expected " + expected);
      }
      // Leave together: the store may live in rank 0, which must not exit while others read.
      store.set("left" + ctx.rank(), "1");
      if (ctx.isFirst()) {
        List<String> everyone = new ArrayList<>();
        for (int r = 0; r < ctx.worldSize(); r++) {
          everyone.add("left" + r);
        }
        store.await(everyone);
      }
    }
  }
}
