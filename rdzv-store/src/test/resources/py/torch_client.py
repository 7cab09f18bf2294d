# A PyTorch TCPStore client (1.13 or 2.x) exercising every command its Python API has against the
# server on argv[1] (the 1.13 ones, and on 2.x also multi_get/multi_set/append/check and a wait
# cancelled on the same connection), plus raw 1.13-framed probes. Prints "OK <check>" per passed
# check; any failure raises (non-zero exit).
import os
import socket
import struct
import sys
from datetime import timedelta

import torch.distributed as dist

port = int(sys.argv[1])
java_key_value = bytes.fromhex(sys.argv[2])


def ok(name):
    print("OK", name, flush=True)


def s64(n):
    return struct.pack("<Q", n)


def string(b):
    return s64(len(b)) + b


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("server closed the connection")
        buf += chunk
    return buf


s = dist.TCPStore("127.0.0.1", port, None, False, timedelta(seconds=10))
base = s.num_keys()

s.set("k", "v1")
assert s.get("k") == b"v1"
ok("set-get")

assert s.add("cnt", 5) == 5
assert s.add("cnt", -2) == 3
assert s.get("cnt") == b"3"
ok("add")

assert s.compare_set("k", "v1", "v2") == b"v2"
assert s.compare_set("k", "zz", "v3") == b"v2"
assert s.compare_set("missing", "x", "y") == b"x"
assert s.compare_set("newk", "", "y") == b"y"
ok("compare_set")

assert s.num_keys() == base + 3, s.num_keys()
ok("num_keys")

assert s.delete_key("k") is True
assert s.delete_key("k") is False
ok("delete_key")

s.wait(["cnt", "newk"])
ok("wait")

try:
    s.wait(["never"], timedelta(milliseconds=300))
    raise AssertionError("wait did not time out")
except RuntimeError as e:
    assert "imeout" in str(e), str(e)
ok("wait-timeout")

# get() of a missing key times out with the store timeout. Use a fresh client: the 1.13 client
# keeps the server's stale wait, and its stray answer would confuse later requests on `s`.
t = dist.TCPStore("127.0.0.1", port, None, False, timedelta(seconds=10))
t.set_timeout(timedelta(milliseconds=300))
try:
    t.get("missing2")
    raise AssertionError("get did not time out")
except RuntimeError as e:
    assert "imeout" in str(e), str(e)
ok("get-timeout")

binary = bytes(range(256)) * 4
s.set("bin", binary)
assert s.get("bin") == binary
big = os.urandom(1 << 20)
s.set("big", big)
assert s.get("big") == big
ok("binary-and-1MiB")

key = "ключ/ü😀"
s.set(key, "värde".encode())
assert s.get(key) == "värde".encode()
assert s.get("java/ключ") == java_key_value
s.set("py/ключ", bytes([0, 255, 1, 254]))
ok("unicode-keys")

# Blocking get, released by the Java test setting "late".
print("WAITING", flush=True)
assert s.get("late") == b"released"
ok("blocking-get-released")

# World-size counting: two workers announce themselves with ADD "init/" +1.
w1 = dist.TCPStore("127.0.0.1", port, 2, False, timedelta(seconds=10), True)
w2 = dist.TCPStore("127.0.0.1", port, 2, False, timedelta(seconds=10), True)
raw = socket.create_connection(("127.0.0.1", port))
raw.sendall(b"\x02" + string(b"init/"))
n = struct.unpack("<Q", recv_exact(raw, 8))[0]
assert recv_exact(raw, n) == b"2"
ok("init-counting")

# CHECK (not in the 1.13 Python API): raw bytes.
raw.sendall(b"\x04" + s64(1) + string(b"/ck"))
assert recv_exact(raw, 1) == b"\x01"
s.set("ck", "1")
# SET has no reply: a round trip on the same connection makes sure the server applied it before
# the CHECK arrives on the other connection.
assert s.get("ck") == b"1"
raw.sendall(b"\x04" + s64(1) + string(b"/ck"))
assert recv_exact(raw, 1) == b"\x00"
raw.sendall(b"\x04" + s64(0))
assert recv_exact(raw, 1) == b"\x00"
ok("check")

# WATCH_KEY on a separate connection, then changes through the Python client.
watch = socket.create_connection(("127.0.0.1", port))
watch.sendall(b"\x07" + string(b"/wk"))
assert recv_exact(watch, 1) == b"\x03"
s.set("wk", "A")
assert recv_exact(watch, 1 + 8 + 3 + 8 + 8 + 1) == b"\x01" + string(b"/wk") + string(b"") + string(b"A")
s.set("wk", "B")
assert recv_exact(watch, 1 + 8 + 3 + 8 + 1 + 8 + 1) == b"\x00" + string(b"/wk") + string(b"A") + string(b"B")
assert s.add("wk2", 0) == 0
assert s.delete_key("wk") is True
assert recv_exact(watch, 1 + 8 + 3 + 8 + 1 + 8) == b"\x02" + string(b"/wk") + string(b"B") + string(b"")
ok("watch-key")

# Malformed input from one connection does not hurt the others.
bad = socket.create_connection(("127.0.0.1", port))
bad.sendall(b"\x0d")
assert bad.recv(1) == b""
assert s.add("cnt", 1) == 4
ok("bad-connection-isolated")
if hasattr(s, "multi_get"):  # the 2.x Python API
    s.multi_set(["m1", "m2"], ["x1", "y22"])
    assert s.multi_get(["m1", "m2"]) == [b"x1", b"y22"]
    ok("multi_set-multi_get")
    s.set("ap", "a")
    s.append("ap", "bc")
    assert s.get("ap") == b"abc"
    s.append("ap-new", "z")
    assert s.get("ap-new") == b"z"
    ok("append")
    assert s.check(["ap", "m1"]) is True
    assert s.check(["ap", "nope"]) is False
    ok("check-api")
    # 2.x cancels a timed-out wait (CANCEL_WAIT) and goes on on the same connection
    try:
        s.wait(["never2"], timedelta(milliseconds=300))
        raise AssertionError("wait did not time out")
    except RuntimeError as e:
        assert "imeout" in str(e), str(e)
    assert s.add("cnt", 0) == 4
    s.set("never2", "x")
    assert s.get("never2") == b"x"
    ok("cancel-wait")
print("DONE", flush=True)
