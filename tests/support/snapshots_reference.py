"""The per-ID snapshot records as traffic/runtime/snapshots.py kept them before one
record covered a jump (commit 9ee55cc): one record per ID, each in-flight
message appended to every newer record.  O(jump) per message, but plainly
right: the tests check the range records report exactly what this does."""
from __future__ import annotations

from collections import OrderedDict

from beaver.traffic.oob.protocol import ChannelState, Report
from beaver.p4src.ids import ahead, is_newer, next_id


class PerIdSnapshots:
    """Mode.BEAVER's records and reports (taken_at_us left 0)."""

    def __init__(self, process: str, peers, capture, window: int):
        self.process, self.peers, self.capture, self.window = process, list(peers), capture, window
        self.current_id = 0
        self.records: OrderedDict[int, dict] = OrderedDict()
        self.sent = dict.fromkeys(self.peers, 0)
        self.received = dict.fromkeys(self.peers, 0)

    def advance(self, snapshot_id: int):
        if not is_newer(snapshot_id, self.current_id):
            return
        local = {"state": self.capture(), "sent": dict(self.sent),
                 "received": dict(self.received)}
        jump = ahead(snapshot_id, self.current_id)
        for step in range(max(1, jump - self.window + 1), jump + 1):
            self.records[next_id(self.current_id, step)] = {
                "local": local, "in_flight": {p: [] for p in self.peers}, "peer_sent": {}}
        while len(self.records) > self.window:
            self.records.popitem(last=False)
        self.current_id = snapshot_id

    def sent_to(self, peer: str):
        self.sent[peer] += 1

    def received_from(self, peer: str, stamp: int, seq: int, message: dict):
        self.received[peer] += 1
        item = None
        for snapshot_id in reversed(self.records):
            if not is_newer(snapshot_id, stamp):
                break
            item = item or {"id": message["id"], "seq": seq, "stamp": stamp, "message": message}
            self.records[snapshot_id]["in_flight"][peer].append(item)

    def count_from(self, peer: str, first: int, last: int, sent_before: int):
        for snapshot_id, record in self.records.items():
            if ahead(snapshot_id, first) >= 0 and ahead(last, snapshot_id) >= 0:
                record["peer_sent"][peer] = sent_before

    def complete(self, record: dict) -> bool:
        return all(record["local"]["received"][p] + len(record["in_flight"][p])
                   == record["peer_sent"].get(p, -1) for p in self.peers)

    def finished_id(self) -> int:
        for snapshot_id in reversed(self.records):
            if self.complete(self.records[snapshot_id]):
                return snapshot_id
        return 0

    def report(self, snapshot_id: int) -> Report:
        if is_newer(snapshot_id, self.current_id):
            return Report(self.process, snapshot_id, taken=False, current_id=self.current_id,
                          finished_id=self.finished_id())
        record = self.records.get(snapshot_id)
        if record is None:
            raise LookupError(snapshot_id)
        local = record["local"]
        channels = {p: ChannelState(local["sent"][p], local["received"][p],
                                    list(record["in_flight"][p])) for p in self.peers}
        return Report(self.process, snapshot_id, taken=True, trigger="mark",
                      local_state=local["state"], channels=channels,
                      current_id=self.current_id, finished_id=self.finished_id())
