"""Writes this worker's whole environment to DIR/TAG.RANK.env, one NAME<TAB>json(value) per line."""
import json
import os
import sys

out_dir, tag = sys.argv[1], sys.argv[2]
with open(os.path.join(out_dir, f"{tag}.{os.environ['RANK']}.env"), "w") as f:
    for name in sorted(os.environ):
        f.write(f"{name}\t{json.dumps(os.environ[name])}\n")
