"""A gloo worker for membership tests. It all-reduces every 0.2 s until the group breaks (a peer
node dies), except when it is alone and the file named by $ELASTIC_DONE exists: then it
all-reduces once and exits 0. Prints its view of the group."""
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
    alone = world == int(os.environ["LOCAL_WORLD_SIZE"])
    if not (alone and os.path.exists(os.environ["ELASTIC_DONE"])):
        while True:
            time.sleep(0.2)
            dist.all_reduce(torch.tensor([1.0]))
    print(f"done rank {rank} world {world} sum {t.item():g}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
