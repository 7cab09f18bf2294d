"""Run N PyTorch (1.13 or 2.x) rendezvous nodes (threads) on an etcd backend ("etcd" or "etcd-v2").

Each node joins, prints one JSON line with its rank, world size and (2.x) "master", the bootstrap
store address rank 0 published, then (with --exchange) writes from_<rank> = hello<rank> into the
returned store and reads every other rank's value back, printing them. --start-after FILE makes
the nodes join only once FILE exists.
"""
import argparse, json, os, sys, threading, time, logging
logging.disable(logging.CRITICAL)
from torch.distributed.elastic.rendezvous import RendezvousParameters
from torch.distributed.elastic.rendezvous.registry import get_rendezvous_handler

ap = argparse.ArgumentParser()
ap.add_argument("--backend", required=True)
ap.add_argument("--endpoint", required=True)
ap.add_argument("--run-id", required=True)
ap.add_argument("--nodes", type=int, default=1)
ap.add_argument("--min", type=int, required=True)
ap.add_argument("--max", type=int, required=True)
ap.add_argument("--timeout", default="60")
ap.add_argument("--last-call-timeout", default="1")
ap.add_argument("--exchange", action="store_true")
ap.add_argument("--hold", type=float, default=0.0)
ap.add_argument("--shutdown", action="store_true")
ap.add_argument("--start-after")
a = ap.parse_args()

def make():
    if a.backend == "etcd":
        conf = dict(timeout=a.timeout, last_call_timeout=a.last_call_timeout)
    else:
        conf = dict(join_timeout=a.timeout, last_call_timeout=a.last_call_timeout)
    return get_rendezvous_handler(RendezvousParameters(
        a.backend, a.endpoint, a.run_id, a.min, a.max, **conf))

handlers = [make() for _ in range(a.nodes)]
print(json.dumps({"ready": a.nodes}), flush=True)
if a.start_after:
    while not os.path.exists(a.start_after):
        time.sleep(0.05)
lock = threading.Lock()

def out(obj):
    with lock:
        print(json.dumps(obj), flush=True)

def join(h):
    t0 = time.time()
    try:
        info = h.next_rendezvous()
        line = {}
        if isinstance(info, tuple):  # 1.13: (store, rank, world_size)
            store, rank, world = info
        else:  # 2.x: RendezvousInfo
            store, rank, world = info.store, info.rank, info.world_size
            b = info.bootstrap_store_info
            if b is not None:
                line["master"] = "%s:%d" % (b.master_addr, b.master_port)
        line.update({"rank": rank, "world": world, "seconds": time.time() - t0})
        out(line)
        if a.exchange:
            store.set("from_%d" % rank, "hello%d" % rank)
            got = [store.get("from_%d" % r).decode() for r in range(world)]
            out({"rank": rank, "got": got})
    except Exception as e:
        out({"error": type(e).__name__, "message": str(e)})

threads = [threading.Thread(target=join, args=(h,)) for h in handlers]
for t in threads: t.start()
for t in threads: t.join()
out({"done": True})
time.sleep(a.hold)
if a.shutdown:
    out({"shutdown": [h.shutdown() for h in handlers]})
