# One torchrun agent's store protocol, run by PyTorch's own code without workers: rank assignment
# (LocalElasticAgent._assign_worker_ranks) and the exit barrier (store_util.barrier), on the round
# store PREFIX of the TCPStore at HOST:PORT.
#   usage: agent_protocol.py HOST PORT PREFIX GROUP_RANK GROUP_WORLD_SIZE ROLE NPROC
import datetime
import sys
import types

import torch
import torch.distributed as dist
import torch.distributed.elastic.utils.store as store_util
from torch.distributed.elastic.agent.server.local_elastic_agent import LocalElasticAgent

host, port, prefix, group_rank, world_size, role, nproc = sys.argv[1:8]
group_rank, world_size = int(group_rank), int(world_size)
store = dist.TCPStore(host, int(port), is_master=False, timeout=datetime.timedelta(seconds=60))
store = dist.PrefixStore(prefix, store)
spec = types.SimpleNamespace(role=role, local_world_size=int(nproc))
agent = object.__new__(LocalElasticAgent)  # the methods used read nothing else of the agent
worker = agent._assign_worker_ranks(store, group_rank, world_size, spec)[0]
print("RANKS", worker.global_rank, worker.world_size, worker.role_rank, worker.role_world_size,
      flush=True)
key = "torchelastic/agent/terminal_state"
if torch.__version__.startswith("1."):
    store_util.barrier(store, group_rank, world_size, key_prefix=key, barrier_timeout=60)
else:
    store_util.barrier(store=store, world_size=world_size, key_prefix=key, barrier_timeout=60)
print("BARRIER done", flush=True)
