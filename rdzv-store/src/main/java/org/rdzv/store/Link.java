package org.rdzv.store;

import java.io.BufferedInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.time.Duration;

/** One blocking client connection to a store server, with little-endian readers. */
final class Link implements AutoCloseable {
  /** Refuse absurd lengths from a server instead of allocating them. */
  private static final long MAX_VALUE = Integer.MAX_VALUE - 64;

  final Socket socket;
  private final InputStream in;
  private final OutputStream out;
  private final byte[] scratch = new byte[8];
  private int readTimeoutMillis = -1;

  private Link(Socket socket) throws IOException {
    this.socket = socket;
    this.in = new BufferedInputStream(socket.getInputStream(), 2048);
    this.out = socket.getOutputStream();
  }

  /** Connects with TCP_NODELAY, giving up after {@code timeoutMillis}. */
  static Link open(InetSocketAddress address, int timeoutMillis) throws IOException {
    Socket socket = new Socket();
    try {
      socket.setTcpNoDelay(true);
      socket.connect(address, Math.max(1, timeoutMillis));
      return new Link(socket);
    } catch (IOException | RuntimeException e) {
      socket.close();
      throw e;
    }
  }

  void send(Frame frame) throws IOException {
    out.write(frame.array(), 0, frame.length());
  }

  /** Sets the read timeout (at least 1 ms; 0 would mean forever). */
  void readTimeout(long millis) throws SocketException {
    int t = (int) Math.max(1, Math.min(millis, Integer.MAX_VALUE));
    if (t != readTimeoutMillis) {
      socket.setSoTimeout(t);
      readTimeoutMillis = t;
    }
  }

  void readTimeout(Duration timeout) throws SocketException {
    readTimeout(timeout.toMillis());
  }

  int u8() throws IOException {
    int b = in.read();
    if (b < 0) {
      throw new EOFException("the server closed the connection");
    }
    return b;
  }

  private void fill(byte[] dst, int n) throws IOException {
    if (in.readNBytes(dst, 0, n) < n) {
      throw new EOFException("the server closed the connection");
    }
  }

  long i64() throws IOException {
    fill(scratch, 8);
    long v = 0;
    for (int i = 7; i >= 0; i--) {
      v = (v << 8) | (scratch[i] & 0xFF);
    }
    return v;
  }

  int u32() throws IOException {
    fill(scratch, 4);
    return (scratch[0] & 0xFF)
        | (scratch[1] & 0xFF) << 8
        | (scratch[2] & 0xFF) << 16
        | (scratch[3] & 0xFF) << 24;
  }

  /** A u64 length and that many bytes. */
  byte[] bytes() throws IOException {
    long n = i64();
    if (n < 0 || n > MAX_VALUE) {
      throw new IOException("the server sent an absurd length " + Long.toUnsignedString(n));
    }
    byte[] value = new byte[(int) n];
    fill(value, value.length);
    return value;
  }

  @Override
  public void close() {
    try {
      socket.close();
    } catch (IOException e) {
      // nothing to do: the link is being discarded
    }
  }
}
