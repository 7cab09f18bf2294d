"""Pickle rendezvous states with the real classes of this torch (1.13 or 2.x) and stand-ins for the
other node field, or load ours.

dump: print "<name> <protocol> <base64> <summary>" for states of every shape and dialect.
load: read "<name> <base64>" lines, unpickle, print "<name> <summary>" (or "<name> ERROR <type>").
States whose nodes have this torch's own field are loaded with pickle.loads and the real classes,
exactly as a torch node reads them.
"""
import base64, io, pickle, sys
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
import torch.distributed.elastic.rendezvous.dynamic_rendezvous as dr

MODULE = "torch.distributed.elastic.rendezvous.dynamic_rendezvous"
REAL_FIELD = fields(dr._NodeDesc)[0].name  # "fqdn" in 1.13, "addr" in 2.x


@dataclass(eq=True, order=True, frozen=True)
class AddrNode:  # the 2.x _NodeDesc
    addr: str
    pid: int
    local_id: int

    def __repr__(self):
        return f"{self.addr}_{self.pid}_{self.local_id}"


@dataclass(eq=True, order=True, frozen=True)
class FqdnNode:  # the 1.13 _NodeDesc
    fqdn: str
    pid: int
    local_id: int

    def __repr__(self):
        return f"{self.fqdn}_{self.pid}_{self.local_id}"


for _c in (AddrNode, FqdnNode):
    _c.__module__ = MODULE
    _c.__qualname__ = "_NodeDesc"
    _c.__name__ = "_NodeDesc"


def node_class(field):
    if field == REAL_FIELD:
        return dr._NodeDesc
    return AddrNode if field == "addr" else FqdnNode


def stamp(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")


def summary(st):
    d = st.__dict__
    nodes = list(d["participants"]) + list(d["wait_list"]) + list(d["last_heartbeats"]) + list(d.get("redundancy_list", ()))
    field = "none"
    if nodes:
        field = "addr" if hasattr(nodes[0], "addr") else "fqdn"
    stamps = list(d["last_heartbeats"].values()) + ([d["deadline"]] if d["deadline"] else [])
    aware = any(t.tzinfo is not None for t in stamps)
    parts = [
        "round=%d" % d["round"],
        "complete=%s" % d["complete"],
        "closed=%s" % d["closed"],
        "deadline=%s" % (stamp(d["deadline"]) if d["deadline"] else "None"),
        "participants=" + ",".join(sorted("%r:%d" % (n, r) for n, r in d["participants"].items())),
        "wait=" + ",".join(sorted(repr(n) for n in d["wait_list"])),
        "redundancy=" + (",".join(sorted(repr(n) for n in d["redundancy_list"])) if "redundancy_list" in d else "absent"),
        "heartbeats=" + ",".join(sorted("%r@%s" % (n, stamp(t)) for n, t in d["last_heartbeats"].items())),
        "aware=%s" % aware,
        "field=%s" % field,
    ]
    return ";".join(parts)


def states():
    t0 = datetime(2024, 1, 2, 3, 4, 5, 678901)
    for dialect in ("1.13", "2.0-2.5", "2.6+"):
        aware = dialect == "2.6+"
        node = node_class("fqdn" if dialect == "1.13" else "addr")

        def ts(seconds):
            t = t0 + timedelta(seconds=seconds)
            return t.replace(tzinfo=timezone.utc) if aware else t

        a, b, c, d = node("node-a.example", 1234, 0), node("node9", 5678, 0), node("node10", 910, 1), node("h\u00e9te", 2**31 + 5, 70000)

        def fresh():
            s = dr._RendezvousState()
            if dialect != "1.13":
                s.redundancy_list = set()
            elif hasattr(s, "redundancy_list"):
                del s.redundancy_list  # 2.x's constructor sets it; 1.13's state has none
            return s

        s = fresh()
        yield dialect + "-empty", s
        s = fresh()
        s.participants = {a: 0, b: 0}
        s.last_heartbeats = {a: ts(0), b: ts(1)}
        s.deadline = ts(30)
        yield dialect + "-joining", s
        s = fresh()
        s.round = 300
        s.complete = True
        s.closed = True
        s.participants = {a: 0, b: 1, c: 2}
        s.wait_list = {d}
        s.last_heartbeats = {a: ts(0), b: ts(1), c: ts(2), d: ts(3)}
        if dialect != "1.13":
            s.redundancy_list = {node("spare", 1, 1)}
            s.last_heartbeats[node("spare", 1, 1)] = ts(4)
        yield dialect + "-complete", s
        s = fresh()
        many = [node("host%d" % i, 1000 + i, i) for i in range(1200)]  # more than one batch of 1000
        s.participants = {n: i for i, n in enumerate(many)}
        s.last_heartbeats = {n: ts(i) for i, n in enumerate(many)}
        s.wait_list = set(many[:1001])
        yield dialect + "-large", s


def dump():
    for name, s in states():
        for proto in (2, 3, 4, 5):
            original = dr._NodeDesc
            # pickle checks the class is reachable under its name
            dr._NodeDesc = node_class("fqdn" if name.startswith("1.13") else "addr")
            try:
                data = pickle.dumps(s, protocol=proto)
            finally:
                dr._NodeDesc = original
            print(name, proto, base64.b64encode(data).decode(), summary(s), flush=True)


class StandIn(pickle.Unpickler):
    def find_class(self, module, name):
        if module == MODULE and name == "_NodeDesc":
            return Chooser
        return super().find_class(module, name)


class Chooser:
    """Becomes a node of either field once its attributes arrive (see fix)."""

    def __new__(cls, *args):
        return object.__new__(Holder)


class Holder:
    def __setstate__(self, d):
        self.__dict__.update(d)


def fix(obj):
    """Turn Holder nodes into hashable descriptors (only needed for the addr dialects)."""
    def conv(n):
        if isinstance(n, Holder):
            d = n.__dict__
            field = "addr" if "addr" in d else "fqdn"
            return node_class(field)(d[field], d["pid"], d["local_id"])
        return n
    d = obj.__dict__
    d["participants"] = {conv(k): v for k, v in d["participants"].items()}
    d["wait_list"] = {conv(k) for k in d["wait_list"]}
    if "redundancy_list" in d:
        d["redundancy_list"] = {conv(k) for k in d["redundancy_list"]}
    d["last_heartbeats"] = {conv(k): v for k, v in d["last_heartbeats"].items()}
    return obj


def load():
    for line in sys.stdin:
        if not line.strip():
            continue
        name, b64 = line.split()
        data = base64.b64decode(b64)
        try:
            if ("addr" in name) != (REAL_FIELD == "addr"):
                st = fix(StandIn(io.BytesIO(data)).load())
            else:
                st = pickle.loads(data)  # the real classes, exactly as a torch node reads
            print(name, summary(st), flush=True)
        except Exception as e:
            print(name, "ERROR", type(e).__name__, flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    dump() if sys.argv[1] == "dump" else load()
