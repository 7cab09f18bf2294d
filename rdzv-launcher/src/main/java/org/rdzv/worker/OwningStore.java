package org.rdzv.worker;

import java.time.Duration;
import java.util.List;
import org.rdzv.api.Store;

/** A store view that, when closed, closes the client connection and the server it owns. */
final class OwningStore implements Store {
  private final Store view;
  private final Store client;
  private final AutoCloseable server;

  OwningStore(Store view, Store client, AutoCloseable server) {
    this.view = view;
    this.client = client;
    this.server = server;
  }

  @Override
  public void set(String key, byte[] value) {
    view.set(key, value);
  }

  @Override
  public byte[] get(String key) {
    return view.get(key);
  }

  @Override
  public long add(String key, long delta) {
    return view.add(key, delta);
  }

  @Override
  public byte[] compareSet(String key, byte[] expected, byte[] desired) {
    return view.compareSet(key, expected, desired);
  }

  @Override
  public boolean check(List<String> keys) {
    return view.check(keys);
  }

  @Override
  public void await(List<String> keys, Duration timeout) {
    view.await(keys, timeout);
  }

  @Override
  public long numKeys() {
    return view.numKeys();
  }

  @Override
  public boolean deleteKey(String key) {
    return view.deleteKey(key);
  }

  @Override
  public void append(String key, byte[] value) {
    view.append(key, value);
  }

  @Override
  public List<byte[]> multiGet(List<String> keys) {
    return view.multiGet(keys);
  }

  @Override
  public void multiSet(List<String> keys, List<byte[]> values) {
    view.multiSet(keys, values);
  }

  @Override
  public Duration timeout() {
    return view.timeout();
  }

  @Override
  public void setTimeout(Duration timeout) {
    view.setTimeout(timeout);
  }

  @Override
  public void close() {
    client.close();
    if (server != null) {
      try {
        server.close();
      } catch (Exception e) {
        // closing a server is best effort; the process is ending anyway
      }
    }
  }

  @Override
  public String toString() {
    return view.toString();
  }
}
