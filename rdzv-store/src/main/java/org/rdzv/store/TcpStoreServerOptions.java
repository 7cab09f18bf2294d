package org.rdzv.store;

/**
 * Settings of a {@link TcpStoreServer}. Immutable; every default lives in {@link #builder()}.
 *
 * @param host the address to bind; empty means every address, dual-stack ({@code [::]} with
 *     IPv4-mapped addresses, like PyTorch's servers)
 * @param port the port; 0 picks a free one (see {@link TcpStoreServer#port()})
 * @param backlog the accept backlog (the kernel caps it at {@code net.core.somaxconn})
 * @param maxKeyLength the longest key accepted, in bytes (PyTorch 2.x libuv: 8192)
 * @param maxValueLength the longest value accepted, in bytes (PyTorch 2.x libuv: 8 MiB)
 * @param maxKeysPerRequest the most keys in one CHECK, WAIT, MULTI_GET or MULTI_SET (libuv: 131072)
 */
public record TcpStoreServerOptions(
    String host,
    int port,
    int backlog,
    int maxKeyLength,
    int maxValueLength,
    int maxKeysPerRequest) {

  /** Every address, a free port, PyTorch 2.x's limits. */
  public static final TcpStoreServerOptions DEFAULT = builder().build();

  public TcpStoreServerOptions {
    host = host == null ? "" : host.strip();
    if (port < 0 || port > 65535) {
      throw new IllegalArgumentException("port must be between 0 and 65535, got " + port);
    }
    if (backlog < 1) {
      throw new IllegalArgumentException("backlog must be positive, got " + backlog);
    }
    if (maxKeyLength < 1 || maxValueLength < 0 || maxKeysPerRequest < 1) {
      throw new IllegalArgumentException(
          "limits must be positive: maxKeyLength="
              + maxKeyLength
              + " maxValueLength="
              + maxValueLength
              + " maxKeysPerRequest="
              + maxKeysPerRequest);
    }
    if (maxValueLength > Integer.MAX_VALUE - 64) {
      throw new IllegalArgumentException("maxValueLength is too large: " + maxValueLength);
    }
  }

  public static Builder builder() {
    return new Builder();
  }

  /** A builder starting from this record's values. */
  public Builder toBuilder() {
    return new Builder()
        .host(host)
        .port(port)
        .backlog(backlog)
        .maxKeyLength(maxKeyLength)
        .maxValueLength(maxValueLength)
        .maxKeysPerRequest(maxKeysPerRequest);
  }

  Limits limits() {
    return new Limits(maxKeyLength, maxValueLength, maxKeysPerRequest);
  }

  /** Builds {@link TcpStoreServerOptions}; defaults as in {@link #DEFAULT}. */
  public static final class Builder {
    private String host = "";
    private int port = 0;
    private int backlog = 16384;
    private int maxKeyLength = Limits.LIBUV.maxKeyLength();
    private int maxValueLength = Limits.LIBUV.maxValueLength();
    private int maxKeysPerRequest = Limits.LIBUV.maxKeysPerRequest();

    private Builder() {}

    public Builder host(String host) {
      this.host = host;
      return this;
    }

    public Builder port(int port) {
      this.port = port;
      return this;
    }

    public Builder backlog(int backlog) {
      this.backlog = backlog;
      return this;
    }

    public Builder maxKeyLength(int maxKeyLength) {
      this.maxKeyLength = maxKeyLength;
      return this;
    }

    public Builder maxValueLength(int maxValueLength) {
      this.maxValueLength = maxValueLength;
      return this;
    }

    public Builder maxKeysPerRequest(int maxKeysPerRequest) {
      this.maxKeysPerRequest = maxKeysPerRequest;
      return this;
    }

    public TcpStoreServerOptions build() {
      return new TcpStoreServerOptions(
          host, port, backlog, maxKeyLength, maxValueLength, maxKeysPerRequest);
    }
  }
}
