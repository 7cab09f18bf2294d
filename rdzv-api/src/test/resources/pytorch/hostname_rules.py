"""Prints, for each host given on the command line, whether PyTorch 1.13's is_host inference
(_matches_machine_hostname) takes it for this machine: `host<TAB>True|False`."""
import sys

from torch.distributed.elastic.rendezvous.utils import _matches_machine_hostname

for host in sys.argv[1:]:
    try:
        print(host, _matches_machine_hostname(host), sep="\t")
    except Exception as error:
        print(host, type(error).__name__, sep="\t")
