package org.rdzv.store;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/** A TCP proxy that forwards both directions unchanged and records what each client sent. */
final class RecordingProxy implements AutoCloseable {
  private final ServerSocket listener;
  private final int targetPort;
  private final List<ByteArrayOutputStream> sent = new CopyOnWriteArrayList<>();
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();

  RecordingProxy(int targetPort) throws IOException {
    this.targetPort = targetPort;
    this.listener = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    Thread.ofPlatform().daemon().name("proxy-accept").start(this::acceptLoop);
  }

  int port() {
    return listener.getLocalPort();
  }

  private void acceptLoop() {
    try {
      while (true) {
        Socket client = listener.accept();
        Socket upstream = new Socket();
        upstream.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), targetPort));
        client.setTcpNoDelay(true);
        upstream.setTcpNoDelay(true);
        sockets.add(client);
        sockets.add(upstream);
        ByteArrayOutputStream record = new ByteArrayOutputStream();
        sent.add(record);
        Thread.ofPlatform().daemon().start(() -> pump(client, upstream, record));
        Thread.ofPlatform().daemon().start(() -> pump(upstream, client, null));
      }
    } catch (IOException e) {
      // closed
    }
  }

  private static void pump(Socket from, Socket to, ByteArrayOutputStream record) {
    byte[] buf = new byte[65536];
    try (InputStream in = from.getInputStream();
        OutputStream out = to.getOutputStream()) {
      int n;
      while ((n = in.read(buf)) > 0) {
        if (record != null) {
          synchronized (record) {
            record.write(buf, 0, n);
          }
        }
        out.write(buf, 0, n);
      }
    } catch (IOException e) {
      // the other side went away
    } finally {
      try {
        to.shutdownOutput();
      } catch (IOException e) {
        // already closed
      }
    }
  }

  /** Everything clients sent, all connections concatenated in the order they opened. */
  byte[] clientBytes() {
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    for (ByteArrayOutputStream r : sent) {
      synchronized (r) {
        all.writeBytes(r.toByteArray());
      }
    }
    return all.toByteArray();
  }

  int connections() {
    return sent.size();
  }

  @Override
  public void close() throws IOException {
    listener.close();
    for (Socket s : sockets) {
      s.close();
    }
  }
}
