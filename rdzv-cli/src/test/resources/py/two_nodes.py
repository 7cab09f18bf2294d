"""Two PyTorch (1.13 or 2.x) c10d nodes (threads) complete one round against argv[1], then heartbeat
for 60 s."""
import sys, threading, time
from torch.distributed.elastic.rendezvous import RendezvousParameters
from torch.distributed.elastic.rendezvous.registry import get_rendezvous_handler

handlers = [get_rendezvous_handler(RendezvousParameters(
    "c10d", sys.argv[1], sys.argv[2], 2, 2, is_host="false", last_call_timeout="1"))
    for _ in range(2)]
threads = [threading.Thread(target=h.next_rendezvous) for h in handlers]
for t in threads: t.start()
for t in threads: t.join()
print("joined", flush=True)
time.sleep(60)
