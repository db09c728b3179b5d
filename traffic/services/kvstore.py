"""An in-group service: a replicated key-value store.

Every replica serves every key.  Registers are last-writer-wins (version =
Lamport clock, replica name); counters are grow-only, one count per replica
that took increments, merged by max, so replication in any order converges.
Every write is replicated to every other replica as an in-group message.

Requests (JSON, via the VIP):   replies (DSR):
    {"op":"get","key":k}            {"ok":true,"value":v}   (null if unset)
    {"op":"put","key":k,"value":v}  {"ok":true}
    {"op":"incr","key":k,"by":n}    {"ok":true,"value":total}
    {"op":"scan","key":k,"count":n} {"ok":true,"items":[[key,value],..]}
anything else                       {"ok":false,"error":".."}

A scan (YCSB's workload E) returns the first n keys, in order, from k on
(k itself included if set), registers and counters alike; n is 1 to
MAX_SCAN, so one reply stays small whatever a client asks.  The keys are
kept sorted as they are first written (a state change), so a scan costs
its own length and a log search, never a sort of the whole store.

A replica checks the updates its peers send: a register's is a key, a value
and a version [clock, replica]; a counter's a key, a replica and a count of
0 or more.  Anything else is refused, changes nothing, and the runtime counts
it ("refused by the application").  Updates need no rule against repeats:
a register keeps its newest version and a counter its largest count, so an
update applied twice changes nothing.

An injected bug for the integration tests (--drop-every N): the replica
ignores one replication update in N it receives.  It keeps the ones a later
update has not yet superseded in its state's "faults", as the ground truth
of a divergence; only the scorer reads them (invariants.faults_at).

Run: python -m beaver.traffic.services.kvstore --name kv1 --dip IP --vip VIP:PORT
         --peer kv2=IP ... [--drop-every N] [--mode beaver] [--log PATH]
         [--transport tcp --flow-map ID --newest-map ID] [--restore STORE:ID [--force]]
(every peer is a replica).  Over TCP (tcp_runtime.py) each request and reply
is a length-prefixed frame on the client's connection; the store is the same.

A replica can be rolled back to a snapshot (traffic/runtime/restore.py, --restore
STORE:ID): its state names the replicas it was taken with and its version.
"""
from __future__ import annotations

import bisect
from typing import Any

from beaver.traffic.messages import Message, Refused
from beaver.traffic.oob.deltas import Derived, derive
from beaver.traffic.runtime.udp import Client, Runtime
from beaver.traffic.runtime.tcp import TcpClient, TcpRuntime


STATE_VERSION = 1   # of local_state's shape: a restore needs the same
MAX_SCAN = 100      # keys in one scan's reply at most (YCSB's default longest scan)

Registers = dict[str, tuple[Any, tuple[int, str]]]   # key -> (value, version)
Counters = dict[str, dict[str, int]]                  # key -> replica -> count


def merge(registers: Registers, counters: Counters, update: Message):
    """Applies one replication update: last writer wins, counters by max."""
    op, key = update["op"], update["key"]
    if op == "put":
        version = (update["version"][0], update["version"][1])
        if key not in registers or registers[key][1] < version:
            registers[key] = (update["value"], version)
    elif op == "counter":
        counts = counters.setdefault(key, {})
        counts[update["replica"]] = max(counts.get(update["replica"], 0), update["count"])
    else:
        raise ValueError(f"unknown replication op {op!r}")


def check(update: Message):
    """Refused unless update is a replication update merge() can apply."""
    key, version = update.get("key"), update.get("version")
    if update.get("op") == "put":
        well_formed = (isinstance(version, list) and len(version) == 2
                       and type(version[0]) is int and isinstance(version[1], str))
    elif update.get("op") == "counter":
        count = update.get("count")
        well_formed = isinstance(update.get("replica"), str) and type(count) is int and count >= 0
    else:
        well_formed = False
    if not (well_formed and isinstance(key, str)):
        raise Refused(f"not a replication update: {update!r}")


def superseded(registers: Registers, counters: Counters, update: Message) -> bool:
    """Whether the state already holds update or a later one."""
    if update["op"] == "put":
        register = registers.get(update["key"])
        return register is not None and register[1] >= tuple(update["version"])
    return counters.get(update["key"], {}).get(update["replica"], 0) >= update["count"]


class KvReplica:
    def __init__(self, runtime: Runtime | TcpRuntime, replicas: list[str], drop_every: int = 0):
        self.runtime = runtime
        self.name = runtime.name
        self.replicas = replicas                           # the others
        self.registers: Registers = {}
        self.counters: Counters = {}
        self.clock = 0
        self.drop_every = drop_every
        self.updates = 0
        self.dropped: list[Message] = []                   # the bug's, not yet superseded
        # The last local state's registers and counters, shared with it and so
        # never changed, and the keys written since: a capture copies only those,
        # derived from the last (a report's diff looks at those keys only).
        self._captured: tuple[Derived, Derived] = (Derived(), Derived())
        self._written: set[str] = set()
        # What a capture holds but rarely changes, one object shared by every
        # capture while it is the same: a report diffs it by identity alone.
        self._layout = {"service": "kv", "version": STATE_VERSION,
                        "replicas": sorted([self.name, *self.replicas])}
        self._faults: dict[str, list] = {"dropped": []}
        self._state: dict[str, Any] = {}   # the last capture, returned again while unchanged
        self._keys: list[str] = []                         # every key set, in order, for scans

    def value(self, key: str) -> Any:
        if key in self.counters:
            return sum(self.counters[key].values())
        register = self.registers.get(key)
        return None if register is None else register[0]

    def scan(self, start: str, count: int) -> list[list]:
        """[key, value] of the first count keys from start on, in order."""
        first = bisect.bisect_left(self._keys, start)
        return [[key, self.value(key)] for key in self._keys[first:first + count]]

    def _known(self, key: str):
        """Keeps key in the scans' order, the first time it is written."""
        if key not in self.registers and key not in self.counters:
            bisect.insort(self._keys, key)

    def on_request(self, message: Message, client: Client | TcpClient):
        op, key = message.get("op"), message.get("key")
        if not isinstance(key, str):
            return self.runtime.reply(client, {"ok": False, "error": "key must be a string"})
        if op == "get":
            return self.runtime.reply(client, {"ok": True, "value": self.value(key)})
        if op == "scan":
            count = message.get("count")
            if type(count) is not int or not 1 <= count <= MAX_SCAN:
                return self.runtime.reply(client, {"ok": False,
                                                   "error": f"count must be 1 to {MAX_SCAN}"})
            return self.runtime.reply(client, {"ok": True, "items": self.scan(key, count)})
        if op == "put":
            self._known(key)
            self.clock += 1
            version = (self.clock, self.name)
            self.registers[key] = (message.get("value"), version)
            self._written.add(key)
            self._replicate({"op": "put", "key": key, "value": message.get("value"),
                             "version": list(version)})
            return self.runtime.reply(client, {"ok": True})
        if op == "incr":
            by = message.get("by", 1)
            if type(by) is not int or by < 1:
                return self.runtime.reply(client, {"ok": False, "error": "by must be >= 1"})
            self._known(key)
            counts = self.counters.setdefault(key, {})
            counts[self.name] = counts.get(self.name, 0) + by
            self._written.add(key)
            self._replicate({"op": "counter", "key": key, "replica": self.name,
                             "count": counts[self.name]})
            return self.runtime.reply(client, {"ok": True, "value": self.value(key)})
        self.runtime.reply(client, {"ok": False, "error": f"unknown op {op!r}"})

    def _replicate(self, update: Message):
        for replica in self.replicas:
            self.runtime.send(replica, dict(update))

    def on_peer(self, message: Message, sender: str):
        check(message)
        self.updates += 1
        if self.drop_every and self.updates % self.drop_every == 0:
            self.dropped.append(message)
            return
        self._known(message["key"])
        merge(self.registers, self.counters, message)
        self._written.add(message["key"])
        if message["op"] == "put":
            self.clock = max(self.clock, message["version"][0])

    def layout(self) -> dict[str, Any]:
        return self._layout

    def local_state(self) -> dict[str, Any]:
        # Captured on every snapshot, up to one a request: what is empty is not walked.
        if self.dropped:
            self.dropped = [u for u in self.dropped
                            if not superseded(self.registers, self.counters, u)]
            self._faults = {"dropped": [dict(u) for u in self.dropped]}
        if self._written:   # else the last capture's, unchanged: no copy of the whole store
            registers, counters = self._captured   # each copied only if a written key is its
            if written := {key: [self.registers[key][0], list(self.registers[key][1])]
                           for key in self._written if key in self.registers}:
                registers = derive(registers, written)
            if written := {key: dict(self.counters[key])
                           for key in self._written if key in self.counters}:
                counters = derive(counters, written)
            self._written = set()
            self._captured = (registers, counters)
        registers, counters = self._captured
        last = self._state
        if not (last and last["registers"] is registers and last["counters"] is counters
                and last["faults"] is self._faults and last["clock"] == self.clock
                and last["updates"] == self.updates):
            self._state = {"service": "kv", "layout": self._layout, "registers": registers,
                           "counters": counters, "clock": self.clock, "updates": self.updates,
                           "faults": self._faults}
        return self._state

    def restore(self, state: dict[str, Any]):
        """Takes the state of a snapshot of this replica (its layout checked first)."""
        self.registers = {k: (v, (version[0], version[1]))
                          for k, (v, version) in state["registers"].items()}
        self.counters = {k: dict(counts) for k, counts in state["counters"].items()}
        self.clock, self.updates = state["clock"], state["updates"]
        self.dropped = [dict(u) for u in state["faults"]["dropped"]]
        self._faults = {"dropped": []}   # the next capture's, unless dropped holds some
        self._captured = (Derived(), Derived())
        self._written = set(self.registers) | set(self.counters)
        self._keys = sorted(self._written)


def main():
    from beaver.traffic.cli import at_least, in_group_parser, run_in_group
    p = in_group_parser("A replica of the replicated key-value store (in-group).")
    p.add_argument("--drop-every", type=at_least(0), default=0,
                   help="injected bug: ignore one replication update in N (default 0: none)")
    args = p.parse_args()
    run_in_group(args, lambda runtime: KvReplica(runtime, [name for name, _ in args.peer],
                                                 args.drop_every))


if __name__ == "__main__":
    main()
