package org.rdzv.cli;

/** Something a command opened for the time it runs; closing it never throws. */
@FunctionalInterface
interface Opened extends AutoCloseable {
  Opened NOTHING = () -> {};

  @Override
  void close();
}
