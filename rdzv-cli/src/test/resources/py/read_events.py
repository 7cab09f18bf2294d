# Reads an rdzv event log with PyTorch's own events API: every line must deserialize as PyTorch's
# Event or RdzvEvent and serialize back to the same text. Prints one line per event, then a count.
import sys

from torch.distributed.elastic.events.api import Event, RdzvEvent

count = 0
with open(sys.argv[1]) as log:
    for line in log:
        line = line.rstrip("\n")
        event = RdzvEvent.deserialize(line) if '"node_state"' in line else Event.deserialize(line)
        if event.serialize() != line:
            sys.exit("changed by a round trip: " + line)
        kind = "rdzv" if isinstance(event, RdzvEvent) else "agent"
        print("event", kind, event.name)
        count += 1
print("read", count)
