"""A gloo worker whose rank 1 raises in the first attempt (restart count 0), then all-reduces."""
import os
import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record


@record
def main():
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    if rank == 1 and os.environ["TORCHELASTIC_RESTART_COUNT"] == "0":
        raise RuntimeError("boom from rank 1")
    t = torch.tensor([rank + 1.0])
    dist.all_reduce(t)
    print(f"rank {rank} restart {os.environ['TORCHELASTIC_RESTART_COUNT']} sum {t.item():g}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
