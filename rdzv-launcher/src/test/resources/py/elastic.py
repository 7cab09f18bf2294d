"""A gloo worker for membership tests: in attempt 0 it all-reduces until the group breaks (a
peer node dies); in later attempts it all-reduces once and exits 0. Prints its view each time."""
import os
import time
import torch
import torch.distributed as dist


def main():
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    restart = os.environ["TORCHELASTIC_RESTART_COUNT"]
    print(f"up rank {rank} world {world} restart {restart}", flush=True)
    t = torch.tensor([1.0])
    dist.all_reduce(t)
    if restart == "0":
        while True:
            time.sleep(0.2)
            dist.all_reduce(torch.tensor([1.0]))
    print(f"done rank {rank} world {world} restart {restart} sum {t.item():g}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
