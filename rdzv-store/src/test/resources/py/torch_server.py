# A PyTorch TCPStore server (1.13, or 2.x's legacy backend in the 2.6 peer) on 127.0.0.1:argv[1];
# prints READY and serves until killed.
import sys
import time
from datetime import timedelta

import torch.distributed as dist

port = int(sys.argv[1])
store = dist.TCPStore("127.0.0.1", port, None, True, timedelta(seconds=60), False)
print("READY", flush=True)
while True:
    time.sleep(60)
