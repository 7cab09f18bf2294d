# Runs Debian's torchrun (torch 1.13) on Python 3.11, where Std.from_str("0") returns None
# because zero-valued IntFlag members are not iterated (reference rendezvous.md §10.5).
import sys
import torch.distributed.elastic.multiprocessing as mp
import torch.distributed.elastic.multiprocessing.api as mp_api

_to_map = mp_api.to_map


def to_map(value, nprocs):
    return _to_map(mp_api.Std.NONE if value is None else value, nprocs)


mp_api.to_map = mp.to_map = to_map

from torch.distributed.run import main  # noqa: E402

sys.exit(main())
