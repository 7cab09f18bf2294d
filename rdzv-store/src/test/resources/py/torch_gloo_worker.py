# One rank of a 2-rank gloo job whose store is an external TCPStore (agent-store mode).
import os
from datetime import timedelta

import torch
import torch.distributed as dist

dist.init_process_group("gloo", init_method="env://", timeout=timedelta(seconds=30))
rank = dist.get_rank()
t = torch.tensor([rank + 1.0])
dist.all_reduce(t)
assert t.item() == 3.0, t
dist.barrier()
group = dist.new_group([0, 1])
u = torch.tensor([10.0 * (rank + 1)])
dist.all_reduce(u, group=group)
assert u.item() == 30.0, u
print("OK rank", rank, flush=True)
dist.destroy_process_group()
