"""Benchmark peer: N PyTorch (1.13 or 2.x) c10d rendezvous nodes (threads in this process) join one
round.

Prints one JSON line: {"nodes": N, "seconds": S, "ok": bool, "detail": "..."}; S spans creating
the handlers and every next_rendezvous() returning.
"""
import json, sys, threading, time
from torch.distributed.elastic.rendezvous import RendezvousParameters
from torch.distributed.elastic.rendezvous.registry import get_rendezvous_handler

endpoint, run_id, n, join_timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
start = time.monotonic()
handlers = [get_rendezvous_handler(RendezvousParameters(
    "c10d", endpoint, run_id, n, n, is_host="false", join_timeout=join_timeout,
    last_call_timeout="1")) for _ in range(n)]
results = [None] * n


def join(i):
    try:
        info = handlers[i].next_rendezvous()
        if isinstance(info, tuple):  # 1.13: (store, rank, world_size)
            _, rank, world = info
        else:  # 2.x: RendezvousInfo (rank 0 has started its bootstrap store server)
            rank, world = info.rank, info.world_size
        results[i] = (rank, world)
    except Exception as e:
        results[i] = (type(e).__name__, str(e))


threads = [threading.Thread(target=join, args=(i,)) for i in range(n)]
for t in threads:
    t.start()
for t in threads:
    t.join()
seconds = time.monotonic() - start
ok = sorted(r[0] for r in results if isinstance(r[0], int)) == list(range(n)) and all(r[1] == n for r in results)
detail = "" if ok else repr([r for r in results if not isinstance(r[0], int)][:3])
print(json.dumps({"nodes": n, "seconds": seconds, "ok": ok, "detail": detail}), flush=True)
