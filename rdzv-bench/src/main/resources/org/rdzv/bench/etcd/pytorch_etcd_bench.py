"""Time N torch rendezvous nodes (threads of one process) on an etcd backend.

Usage: pytorch_etcd_bench.py BACKEND ENDPOINT RUN_ID NODES TIMEOUT_SECONDS
Prints one JSON line: {"nodes": N, "seconds": S, "ok": K, "errors": [...]}, where S runs from the
start of N threads, each creating its handler and joining, until the last node has its rank.
"""
import json, logging, sys, threading, time
logging.disable(logging.CRITICAL)
from torch.distributed.elastic.rendezvous import RendezvousParameters
from torch.distributed.elastic.rendezvous.registry import get_rendezvous_handler

backend, endpoint, run_id, n, timeout = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
if backend == "etcd":
    conf = dict(timeout=timeout, last_call_timeout="1")
else:
    conf = dict(join_timeout=timeout, last_call_timeout="1")
ends, errors, lock = [], [], threading.Lock()

def node():
    try:
        h = get_rendezvous_handler(RendezvousParameters(backend, endpoint, run_id, n, n, **conf))
        h.next_rendezvous()
        with lock:
            ends.append(time.monotonic())
    except Exception as e:
        with lock:
            errors.append(type(e).__name__ + ": " + str(e))

threads = [threading.Thread(target=node, daemon=True) for _ in range(n)]
t0 = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - t0
seconds = (max(ends) - t0) if ends else None
print(json.dumps({"nodes": n, "seconds": seconds, "elapsed": elapsed, "ok": len(ends),
                  "errors": errors[:3]}), flush=True)
