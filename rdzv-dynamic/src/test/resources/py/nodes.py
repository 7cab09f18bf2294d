"""Run N PyTorch DynamicRendezvousHandler nodes (threads) against a c10d endpoint (1.13 or 2.x).

Prints one JSON line per event: {"created": n} once the handlers exist (a hosting node then
listens), one {"node", "rank", "world", "round"} (or {"node", "error"}) per node, and with
--report-waiting a {"waiting": n} line as soon as num_nodes_waiting() turns positive, with
--report-participants a {"participants": n} line whenever the first node's synced state changes
its count. --start-after FILE makes the nodes join only once FILE exists. On 2.x a
node's line also carries "master" ("addr:port", its bootstrap store information); with
--check-master every node connects to that address as a TCPStore client and a node line carries
"master_ok" (rank 0 sets a key for its round, every rank reads it back) and, after the first
round, "stale" (whether the previous round's key is still there). --rounds N joins N rounds in a
row (each node calls next_rendezvous again, as an agent restarting its workers does), with
--between-rounds FILE only once FILE.<round> exists.
"""
import argparse, json, os, threading, time
from datetime import timedelta
from torch.distributed import TCPStore
from torch.distributed.elastic.rendezvous import RendezvousParameters
from torch.distributed.elastic.rendezvous.registry import get_rendezvous_handler

ap = argparse.ArgumentParser()
ap.add_argument("--endpoint", required=True)
ap.add_argument("--run-id", required=True)
ap.add_argument("--nodes", type=int, default=2)
ap.add_argument("--min", type=int, required=True)
ap.add_argument("--max", type=int, required=True)
ap.add_argument("--is-host", default="false")
ap.add_argument("--join-timeout", default="60")
ap.add_argument("--last-call-timeout", default="1")
ap.add_argument("--hold", type=float, default=5.0)
ap.add_argument("--report-waiting", action="store_true")
ap.add_argument("--shutdown", action="store_true")
ap.add_argument("--check-master", action="store_true")
ap.add_argument("--report-participants", action="store_true")
ap.add_argument("--start-after")
ap.add_argument("--rounds", type=int, default=1)
ap.add_argument("--between-rounds")
a = ap.parse_args()

handlers = []
for i in range(a.nodes):
    host = a.is_host if i == 0 else "false"
    handlers.append(get_rendezvous_handler(RendezvousParameters(
        "c10d", a.endpoint, a.run_id, a.min, a.max, is_host=host,
        join_timeout=a.join_timeout, last_call_timeout=a.last_call_timeout)))
print(json.dumps({"created": len(handlers)}), flush=True)
lock = threading.Lock()
if a.start_after:
    while not os.path.exists(a.start_after):
        time.sleep(0.05)


def out(obj):
    with lock:
        print(json.dumps(obj), flush=True)


def join(h):
    try:
        for r in range(a.rounds):
            if r > 0 and a.between_rounds:
                while not os.path.exists("%s.%d" % (a.between_rounds, r)):
                    time.sleep(0.05)
            info = h.next_rendezvous()
            if isinstance(info, tuple):  # 1.13: (store, rank, world_size)
                store, rank, world = info
                master = None
            else:  # 2.x: RendezvousInfo
                store, rank, world = info.store, info.rank, info.world_size
                b = info.bootstrap_store_info
                master = None if b is None else "%s:%d" % (b.master_addr, b.master_port)
            rnd = h._state_holder.state.round
            line = {"node": repr(h._this_node), "rank": rank, "world": world, "round": rnd}
            if master is not None:
                line["master"] = master
            if a.check_master and master is not None:
                addr, port = master.rsplit(":", 1)
                client = TCPStore(addr, int(port), None, False, timedelta(seconds=30))
                key = "rank0-round-%d" % rnd
                if rank == 0:
                    client.set(key, "yes")
                line["master_ok"] = client.get(key) == b"yes"
                if rnd > 0:
                    line["stale"] = client.check(["rank0-round-%d" % (rnd - 1)])
            out(line)
    except Exception as e:
        out({"node": repr(h._this_node), "error": type(e).__name__, "message": str(e)})


threads = [threading.Thread(target=join, args=(h,)) for h in handlers]
for t in threads: t.start()
for t in threads: t.join()
end = time.monotonic() + a.hold
count = None
while time.monotonic() < end:
    if a.report_participants:
        h = handlers[0]
        with h._heartbeat_lock:
            h._state_holder.sync()
            n = len(h._state_holder.state.participants)
        if n != count:
            count = n
            out({"participants": n})
    if a.report_waiting:
        n = handlers[0].num_nodes_waiting()
        if n > 0:
            out({"waiting": n})
            a.report_waiting = False
    time.sleep(0.2)
if a.shutdown:
    out({"shutdown": [h.shutdown() for h in handlers]})
out({"exit": True})
