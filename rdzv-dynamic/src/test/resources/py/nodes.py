"""Run N torch-1.13 DynamicRendezvousHandler nodes (threads) against a c10d endpoint.

Prints one JSON line per event: {"created": n} once the handlers exist (a hosting node then
listens), one {"node", "rank", "world", "round"} (or {"node", "error"}) per node, and with
--report-waiting a {"waiting": n} line as soon as num_nodes_waiting() turns positive.
"""
import argparse, json, threading, time
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
a = ap.parse_args()

handlers = []
for i in range(a.nodes):
    host = a.is_host if i == 0 else "false"
    handlers.append(get_rendezvous_handler(RendezvousParameters(
        "c10d", a.endpoint, a.run_id, a.min, a.max, is_host=host,
        join_timeout=a.join_timeout, last_call_timeout=a.last_call_timeout)))
print(json.dumps({"created": len(handlers)}), flush=True)


def join(h):
    try:
        store, rank, world = h.next_rendezvous()
        print(json.dumps({"node": repr(h._this_node), "rank": rank, "world": world,
                          "round": h._state_holder.state.round}), flush=True)
    except Exception as e:
        print(json.dumps({"node": repr(h._this_node), "error": type(e).__name__,
                          "message": str(e)}), flush=True)


threads = [threading.Thread(target=join, args=(h,)) for h in handlers]
for t in threads: t.start()
for t in threads: t.join()
end = time.monotonic() + a.hold
while time.monotonic() < end:
    if a.report_waiting:
        n = handlers[0].num_nodes_waiting()
        if n > 0:
            print(json.dumps({"waiting": n}), flush=True)
            a.report_waiting = False
    time.sleep(0.2)
if a.shutdown:
    print(json.dumps({"shutdown": [h.shutdown() for h in handlers]}), flush=True)
print(json.dumps({"exit": True}), flush=True)
