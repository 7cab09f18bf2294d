"""Runs PyTorch 1.13's own rendezvous helpers over a table of inputs and prints what they return.

Output: one tab-separated line per case, `function  input  outcome  result`, where outcome is
`ok` or the exception class, and text is escaped (backslash, tab, newline). The Java tests
(PyTorchRulesTest) compare our implementation with this table: the committed copy
`api_rules.tsv`, and, where PyTorch is installed, a fresh run of this script.
Run with /usr/bin/python3 (the Debian interpreter that has torch).
"""
import sys

from torch.distributed.elastic.rendezvous import RendezvousParameters
from torch.distributed.elastic.rendezvous.utils import (
    _parse_rendezvous_config,
    parse_rendezvous_endpoint,
)


def esc(text):
    return str(text).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def typed(value):
    if value is None:
        return "none:"
    if isinstance(value, bool):
        return "bool:" + str(value)
    if isinstance(value, int):
        return "int:" + str(value)
    if isinstance(value, float):
        return "float:" + repr(value)
    return "str:" + value


def emit(function, given, call, show=str):
    try:
        result = call()
        print(function, esc(given), "ok", esc(show(result)), sep="\t")
    except Exception as error:  # the class and the message are what we compare
        print(function, esc(given), type(error).__name__, esc(error), sep="\t")


ENDPOINTS = [
    None, "", "  ", "host", "host:1234", "host:0", "host:00080", "host:65535", "host:65536",
    "host:-1", "host:abc", "host:", "host:123456", "[::1]", "[::1]:29400", "::1", "fe80::1",
    "[fe80::1%eth0]:5", "[host]", "[]", ":5", "a b", "host_1.example-x:7", " host:7 ",
    "10.0.0.1:29400", "[2001:db8::1]:80", "nødé:1", "host:+80", "host: 80", "h:1:2", "[",
    "]", "[:]", "a/b:1", "host:٣",
]
for e in ENDPOINTS:
    emit("endpoint", "none:" if e is None else "str:" + e,
         lambda e=e: parse_rendezvous_endpoint(e, 29400), lambda r: f"{r[0]}|{r[1]}")

CONFIGS = [
    "", "   ", "a=1", "a=1,b=2", " a = 1 , b = 2 ", "a=b=c", "a=1,,b=2", "=1", "a", "a=",
    "a= ", "a=1,a=2", "a=1,", ",a=1", "join_timeout=600,last_call_timeout=30", "k=v with space",
]
for c in CONFIGS:
    emit("config", "str:" + c, lambda c=c: _parse_rendezvous_config(c),
         lambda d: ",".join(f"{k}={v}" for k, v in d.items()))

VALUES = [
    None, True, False, 0, 1, 2, -1, 1.0, 1.9, -1.9, "1", "0", "true", "TRUE", "True", "t",
    "T", "yes", "YES", "y", "false", "f", "no", "n", "N", "", " true", "true ", "on", "off",
    "12", " 12 ", "+5", "-7", "1_000", "1__0", "_1", "1_", "1.5", "0x10", "abc", "٣",
    "99999999999", "- 1",
]
for v in VALUES:
    params = RendezvousParameters("c10d", "localhost", "run", 1, 1, opt=v)
    emit("get_as_bool", typed(v), lambda p=params: p.get_as_bool("opt"))
    emit("get_as_int", typed(v), lambda p=params: p.get_as_int("opt"))

for backend, lo, hi in [("", 1, 1), ("c10d", 0, 1), ("c10d", 1, 0), ("c10d", 2, 1),
                        ("c10d", 1, 1), ("c10d", 3, 5), ("x", -1, -2)]:
    emit("parameters", f"{backend}|{lo}|{hi}",
         lambda b=backend, lo=lo, hi=hi: RendezvousParameters(b, "", "", lo, hi),
         lambda p: f"{p.backend}|{p.min_nodes}|{p.max_nodes}")

# The registry: a fresh RendezvousHandlerRegistry per case, creators named by the case.
import re

from torch.distributed.elastic.rendezvous import RendezvousHandler, RendezvousHandlerRegistry


class Named(RendezvousHandler):
    def __init__(self, name):
        self.name = name

    def get_backend(self):
        return self.name

    def next_rendezvous(self):
        raise NotImplementedError

    def is_closed(self):
        return False

    def set_closed(self):
        pass

    def num_nodes_waiting(self):
        return 0

    def get_run_id(self):
        return "run"

    def shutdown(self):
        return True


def creator_of(name):
    return lambda params: Named(name)


def registry_case(given, steps):
    """steps: a list of ("register", name, creator) / ("create", backend); prints the last outcome."""
    def call():
        registry = RendezvousHandlerRegistry()
        result = None
        for step in steps:
            if step[0] == "register":
                registry.register(step[1], step[2])
                result = "registered"
            else:
                handler = registry.create_handler(RendezvousParameters(step[1], "", "run", 1, 1))
                result = handler.get_backend()
        return result
    def masked():
        try:
            return call()
        except Exception as error:  # creators print as Python function reprs: mask them
            raise type(error)(re.sub(r"'<function [^']*>'", "'<creator>'", str(error)))
    emit("registry", given, masked)


one, two = creator_of("mine"), creator_of("mine")
registry_case("register-empty-name", [("register", "", one)])
registry_case("register-same-twice", [("register", "mine", one), ("register", "mine", one)])
registry_case("register-other-creator", [("register", "mine", one), ("register", "mine", two)])
registry_case("create-unknown", [("register", "mine", one), ("create", "yours")])
registry_case("create-registered", [("register", "mine", one), ("create", "mine")])
registry_case("create-name-mismatch", [("register", "other", one), ("create", "other")])
registry_case("create-case-sensitive", [("register", "mine", one), ("create", "MINE")])
sys.stdout.flush()
