#!/usr/bin/env bash
# (The team's shared tool shared/tools/torch2-peer.sh, kept here so that CI on a clean clone has it.)
# Builds a Debian 13 (trixie) root with PyTorch 2.6 (python3-torch, Python 3.13) under DIR, so that
# real PyTorch 2.x processes can be run on this Debian 12 machine as test peers, next to Debian 12's
# PyTorch 1.13. Needs root, debootstrap (installed if missing) and the Debian package mirror; about
# 2 GB of disk and 1-6 minutes. Idempotent: a finished root is reused.
#
#   usage: torch2-peer.sh [DIR]            (default DIR: /opt/torch2-peer)
#   then:  DIR/enter python3 -c 'import torch; print(torch.__version__)'
#
# DIR/enter CMD... runs CMD inside the root, in the same network (loopback), with the caller's
# environment and the host's /tmp, /work, /root, /home and current directory at the same paths
# (bind mounts in a private mount namespace that ends with CMD). PATH is reset to the root's own
# system path, so `python3` and `torchrun` are PyTorch 2.6's. It puts
# DIR/site (a sitecustomize) on PYTHONPATH: Debian's torch 2.6 is built without libuv while its
# TCPStore defaults to use_libuv=True, so every TCPStore, server or client, fails with
# "use_libuv was requested but PyTorch was build without libuv support"; the sitecustomize sets
# use_libuv=False, which is PyTorch 2.x's legacy server and the same 2.x client. Set
# TORCH2_PEER_NO_PATCH=1 to see Debian's behaviour unpatched.
set -euo pipefail
DIR=${1:-/opt/torch2-peer}
DIR=$(readlink -m "$DIR")
if [ ! -x "$DIR/usr/bin/python3" ] || ! chroot "$DIR" python3 -c 'import torch' 2>/dev/null; then
  command -v debootstrap >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  if [ ! -x "$DIR/bin/bash" ]; then
    debootstrap --variant=minbase trixie "$DIR" http://deb.debian.org/debian >"$DIR.debootstrap.log" 2>&1 \
      || { echo "debootstrap failed; see $DIR.debootstrap.log" >&2; exit 1; }
  fi
  cp /etc/hosts "$DIR/etc/hosts"; cp /etc/resolv.conf "$DIR/etc/resolv.conf" 2>/dev/null || true
  chroot "$DIR" bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-etcd >/dev/null' \
    || { echo "installing python3-torch in $DIR failed" >&2; exit 1; }
fi
cp /etc/hosts "$DIR/etc/hosts"
mkdir -p "$DIR/site" "$DIR/host"
cat >"$DIR/site/sitecustomize.py" <<'PY'
# Debian's torch 2.6 has no libuv but TCPStore defaults to use_libuv=True: use the legacy 2.x server.
import os, sys
if os.environ.get("TORCH2_PEER_NO_PATCH") != "1":
    import torch.distributed as _d
    _Orig = _d.TCPStore
    class TCPStore(_Orig):
        def __init__(self, *a, **k):
            k["use_libuv"] = False
            super().__init__(*a, **k)
    for _m in list(sys.modules.values()):
        if getattr(_m, "TCPStore", None) is _Orig:
            try: setattr(_m, "TCPStore", TCPStore)
            except Exception: pass
PY
cat >"$DIR/enter" <<SH
#!/usr/bin/env bash
# Runs a command inside the PyTorch 2.6 root at $DIR: same loopback, same environment, and the
# host's /tmp, /work, /root, /home and the current directory at the same paths. The mounts live in
# a private mount namespace that ends with the command, so nothing of the host stays mounted
# under the root (removing the root can never reach host files).
set -e
R="$DIR"
exec unshare --mount --propagation private bash -c '
  R=\$0; cwd=\$(pwd)
  mount --bind /proc "\$R/proc"; mount --bind /dev "\$R/dev"
  for d in /tmp /work /root /home "/\$(echo "\$cwd" | cut -d/ -f2)"; do
    [ -d "\$d" ] && [ "\$d" != / ] && [ "\$d" != /opt ] || continue
    mountpoint -q "\$R\$d" && continue
    mkdir -p "\$R\$d" && mount --bind "\$d" "\$R\$d"
  done
  exec chroot "\$R" /usr/bin/env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin PYTHONPATH="/site\${PYTHONPATH:+:\$PYTHONPATH}" USE_LIBUV=0 \
    bash -c "cd \"\$cwd\" 2>/dev/null || cd /; exec \"\\\$@\"" _ "\$@"
' "\$R" "\$@"
SH
chmod +x "$DIR/enter"
echo "PyTorch $("$DIR/enter" python3 -c 'import torch; print(torch.__version__)' 2>/dev/null) ready: $DIR/enter CMD..."
