"""All-reduce over gloo, launched by `rdzv run` (or torchrun).

    bin/rdzv run --standalone --nproc-per-node 2 examples/allreduce.py

Each worker reads its rank and the store address from the environment the agent sets
(env:// rendezvous), joins a gloo process group, and sums rank+1 over all workers.
Runs with PyTorch 1.13 or 2.x on CPU.
"""
import os
import sys

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record


@record  # an uncaught exception goes to TORCHELASTIC_ERROR_FILE, shown in the agent's summary
def main() -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    value = torch.tensor([rank + 1.0])
    dist.all_reduce(value)
    expected = world * (world + 1) / 2
    # One write per line, so that lines of workers sharing a terminal do not interleave.
    sys.stdout.write(
        f"rank {rank}/{world} (local {os.environ['LOCAL_RANK']}, node {os.environ['GROUP_RANK']}):"
        f" all_reduce sum = {value.item():g}, expected {expected:g}\n"
    )
    sys.stdout.flush()
    if value.item() != expected:
        raise RuntimeError(f"all_reduce gave {value.item()}, expected {expected}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
