"""A worker that leaves a process behind: it double-forks a grandchild that keeps the worker's
stdout and stderr (the agent's pipes), optionally starting a session of its own (a daemon), and
both ignore SIGTERM when asked to. Usage: daemonizing.py PIDFILE [setsid] [ignore-term]."""
import os
import signal
import sys
import time

pid_file = sys.argv[1]
flags = set(sys.argv[2:])
if "ignore-term" in flags:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if os.fork() == 0:
    if "setsid" in flags:
        os.setsid()
    if os.fork() == 0:
        with open(pid_file + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.rename(pid_file + ".tmp", pid_file)
        time.sleep(600)
        os._exit(0)
    os._exit(0)
# One write: under python -u, print() writes its pieces separately, and the agent's log lines
# share the pipe.
sys.stdout.write("worker %d\n" % os.getpid())
sys.stdout.flush()
time.sleep(600)
