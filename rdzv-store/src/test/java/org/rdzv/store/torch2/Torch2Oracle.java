package org.rdzv.store.torch2;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.function.Supplier;
import org.bytedeco.javacpp.chrono.Milliseconds;
import org.bytedeco.pytorch.ByteVector;
import org.bytedeco.pytorch.StringVector;
import org.bytedeco.pytorch.TCPStore;
import org.bytedeco.pytorch.TCPStoreOptions;

/**
 * libtorch 2.10's own TCPStore, driven through the JavaCPP binding, in a process of its own (a
 * native crash at JVM exit, seen with this binding, must not take the test JVM down).
 *
 * <ul>
 *   <li>{@code server PORT libuv|legacy}: a real 2.10 server; prints {@code READY}, serves until
 *       stdin says {@code quit}, closes the store, prints {@code CLOSED}.
 *   <li>{@code client PORT}: a real 2.10 client exercising every 2.x command against the server on
 *       PORT, printing {@code OK <check>} per check and {@code DONE} at the end. Halfway it prints
 *       {@code WAITING} and blocks in get("late") until the test sets it.
 * </ul>
 */
public final class Torch2Oracle {
  private Torch2Oracle() {}

  public static void main(String[] args) throws Exception {
    int port = Integer.parseInt(args[1]);
    switch (args[0]) {
      case "server" -> server(port, "libuv".equals(args[2]));
      case "client" -> client(port);
      case "worker" -> worker(port, Integer.parseInt(args[2]));
      default -> throw new IllegalArgumentException(args[0]);
    }
    System.out.flush();
    // Skip JVM shutdown: the binding has crashed in native code during exit before.
    Runtime.getRuntime().halt(0);
  }

  private static TCPStoreOptions options(
      int port, boolean server, boolean libuv, long timeoutMillis) {
    return new TCPStoreOptions()
        .port((short) port)
        .isServer(server)
        .waitWorkers(false)
        .useLibUV(libuv)
        .timeout(new Milliseconds(timeoutMillis));
  }

  private static void server(int port, boolean libuv) throws Exception {
    TCPStore store = new TCPStore("127.0.0.1", options(port, true, libuv, 30_000));
    System.out.println("READY libuv=" + store.isLibUvBackend());
    System.out.flush();
    BufferedReader in =
        new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    String line;
    while ((line = in.readLine()) != null && !line.equals("quit")) {
      // keep serving
    }
    store.close();
    System.out.println("CLOSED");
  }

  /** A client announcing itself as one of {@code worldSize} workers (ADD "init/" +1). */
  private static void worker(int port, int worldSize) {
    TCPStoreOptions options =
        options(port, false, true, 10_000)
            .numWorkers(
                new org.bytedeco.javacpp.SizeTPointer(
                    worldSize, 1)) // std::optional: value, engaged
            .waitWorkers(true);
    TCPStore s = new TCPStore("127.0.0.1", options);
    System.out.println("JOINED");
    s.close();
  }

  static ByteVector bytes(String s) {
    return new ByteVector(s.getBytes(StandardCharsets.UTF_8));
  }

  static ByteVector bytes(byte[] b) {
    return new ByteVector(b);
  }

  static byte[] array(ByteVector v) {
    byte[] out = new byte[(int) v.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = v.get(i);
    }
    return out;
  }

  static String string(ByteVector v) {
    return new String(array(v), StandardCharsets.UTF_8);
  }

  static void check(String name, boolean condition, Supplier<String> detail) {
    if (!condition) {
      throw new AssertionError(name + ": " + detail.get());
    }
    System.out.println("OK " + name);
    System.out.flush();
  }

  private static void client(int port) throws Exception {
    TCPStore s = new TCPStore("127.0.0.1", options(port, false, true, 10_000));
    s.set("k", bytes("v1"));
    check("set-get", string(s.get("k")).equals("v1"), () -> "get k");
    long a = s.add("cnt", 5);
    long b = s.add("cnt", -2);
    check("add", a == 5 && b == 3 && string(s.get("cnt")).equals("3"), () -> a + " " + b);
    String m = string(s.compareSet("k", bytes("v1"), bytes("v2")));
    String mm = string(s.compareSet("k", bytes("zz"), bytes("v3")));
    String miss = string(s.compareSet("missing", bytes("x"), bytes("y")));
    String create = string(s.compareSet("newk", bytes(""), bytes("y")));
    check(
        "compareSet",
        m.equals("v2") && mm.equals("v2") && miss.equals("x") && create.equals("y"),
        () -> m + mm + miss + create);
    check(
        "check",
        s.check(new StringVector("k", "cnt")) && !s.check(new StringVector("k", "nope")),
        () -> "check");
    s._wait(new StringVector("k", "newk"));
    check("wait", true, () -> "");
    long t0 = System.nanoTime();
    String timeoutMessage = null;
    try {
      s._wait(new StringVector("never"), new Milliseconds(300));
    } catch (RuntimeException e) {
      timeoutMessage = e.getMessage();
    }
    long waited = (System.nanoTime() - t0) / 1_000_000;
    String tm = timeoutMessage;
    check(
        "wait-timeout",
        tm != null && waited >= 290,
        () -> "no timeout: " + tm + " after " + waited);
    // The CANCEL_WAIT dance kept the connection in sync.
    check("after-timeout", s.add("cnt", 0) == 3, () -> "desync");
    long keys = s.getNumKeys();
    check("getNumKeys", keys == 3, () -> "numKeys " + keys);
    check("deleteKey", s.deleteKey("k") && !s.deleteKey("k"), () -> "delete");
    s.append("ap", bytes("ab"));
    s.append("ap", bytes("cd"));
    check("append", string(s.get("ap")).equals("abcd"), () -> string(s.get("ap")));
    s.queuePush("q", bytes("e1"));
    s.queuePush("q", bytes("e2"));
    long len = s.queueLen("q");
    String p1 = string(s.queuePop("q", false));
    String p2 = string(s.queuePop("q", true));
    boolean emptyRaised = false;
    try {
      s.queuePop("q", false);
    } catch (RuntimeException e) {
      emptyRaised = true;
    }
    boolean er = emptyRaised;
    check("queues", len == 2 && p1.equals("e1") && p2.equals("e2") && er, () -> len + p1 + p2 + er);
    StringVector listed = s.listKeys();
    String listing =
        Arrays.toString(Arrays.stream(listed.get()).map(p -> p.getString()).sorted().toArray());
    check("listKeys", listing.equals("[ap, cnt, newk]"), () -> listing);
    byte[] binary = new byte[1 << 20];
    new java.util.Random(3).nextBytes(binary);
    s.set("big", bytes(binary));
    check("1MiB", Arrays.equals(array(s.get("big")), binary), () -> "1 MiB mismatch");
    s.set("ключ/ü😀", bytes("värde"));
    check("unicode", string(s.get("ключ/ü😀")).equals("värde"), () -> "unicode");
    System.out.println("WAITING");
    System.out.flush();
    check("blocking-get-released", string(s.get("late")).equals("released"), () -> "late");
    s.setTimeout(new Milliseconds(300));
    String got = null;
    try {
      s.get("missing2-after-timeout-setting");
    } catch (RuntimeException e) {
      got = "raised";
    }
    check("get-timeout", "raised".equals(got), () -> "no timeout");
    s.close();
    System.out.println("DONE");
  }
}
