"""A worker that prints its rank and pid and sleeps until stopped."""
import os
import time

print("worker rank=%s pid=%d" % (os.environ.get("RANK"), os.getpid()), flush=True)
time.sleep(600)
