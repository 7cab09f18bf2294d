"""A worker that prints its rank and pid and sleeps until stopped."""
import os
import sys
import time

# One write: under python -u, print() writes the text and the newline separately.
sys.stdout.write("worker rank=%s pid=%d\n" % (os.environ.get("RANK"), os.getpid()))
sys.stdout.flush()
time.sleep(600)
