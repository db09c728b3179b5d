"""One in-group process's snapshot state: the rule, the records, the channels.

No sockets here: the runtime calls in with what arrived and sends what this
says to send, all under its lock.

The rule (Lai-Yang style, no FIFO needed): a message carrying a newer ID
than the process's makes it record its local state before the message is
handled.  A jump from ID a to b records one local state that serves every ID
in (a, b].  Records are kept for the newest `window` IDs, like the switch's
ring.

Channel state: an APP message from peer q stamped older than N that arrives
after this process's snapshot N was in flight at the cut.  The channel q -> p
is complete for N when p's received_before + len(in_flight) equals q's
sent_before, which q announces in a COUNT message after its own snapshot.
"""
from __future__ import annotations

import enum
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from beaver.control.oob import ChannelState, Report
from beaver.p4src.ids import ahead, is_newer, next_id
from beaver.p4src.wire import RING_SIZE


class Mode(str, enum.Enum):
    BEAVER = "beaver"      # SLB marks, peer stamps and out-of-band initiation
    LAI_YANG = "lai-yang"  # peer stamps and out-of-band initiation; SLB marks ignored
    POLLING = "polling"    # each process on its own timer; no channel state
    OFF = "off"            # no snapshot layer: the "without Beaver" baseline


@dataclass(frozen=True)
class LocalSnapshot:
    trigger: str                  # "mark", "peer", "oob" or "timer"
    taken_at_us: int
    state: Any
    sent_before: dict[str, int]   # APP messages sent to each peer before it
    received_before: dict[str, int]


@dataclass
class Record:
    """What this process knows of one snapshot ID."""
    local: LocalSnapshot          # shared by every ID one jump covered
    in_flight: dict[str, list]    # per peer: messages that were on the channel
    peer_sent: dict[str, int]     # per peer: its sent_before towards us, once COUNTed


@dataclass(frozen=True)
class Taken:
    """A local snapshot just recorded, for the IDs first..last."""
    first: int
    last: int
    trigger: str
    sent_before: dict[str, int]


def now_us() -> int:
    return time.time_ns() // 1000


class Snapshots:
    def __init__(self, process: str, peers: Iterable[str], mode: Mode,
                 capture: Callable[[], Any], window: int = RING_SIZE):
        if mode is Mode.OFF:
            raise ValueError("Mode.OFF has no snapshot state")
        self.process = process
        self.peers = list(peers)
        self.mode = mode
        self.records_channels = mode in (Mode.BEAVER, Mode.LAI_YANG)
        self.capture = capture
        self.window = window
        self.current_id = 0
        self.records: OrderedDict[int, Record] = OrderedDict()
        self.sent = dict.fromkeys(self.peers, 0)
        self.received = dict.fromkeys(self.peers, 0)

    # Triggers: each applies the mode's policy and returns what was taken, if anything.

    def mark(self, snapshot_id: int) -> Taken | None:
        """An SLB's mark on a client's request."""
        return self._advance(snapshot_id, "mark") if self.mode is Mode.BEAVER else None

    def stamp(self, snapshot_id: int) -> Taken | None:
        """A peer's stamp."""
        return self._advance(snapshot_id, "peer") if self.records_channels else None

    def oob(self, snapshot_id: int) -> Taken | None:
        """The controller's out-of-band initiation (sent after every SLB acknowledged)."""
        return self._advance(snapshot_id, "oob") if self.records_channels else None

    def poll(self) -> Taken | None:
        """The polling baseline's own timer: the next ID, uncoordinated."""
        if self.mode is not Mode.POLLING:
            return None
        return self._advance(next_id(self.current_id), "timer")

    def _advance(self, snapshot_id: int, trigger: str) -> Taken | None:
        if not is_newer(snapshot_id, self.current_id):
            return None
        local = LocalSnapshot(trigger, now_us(), self.capture(), dict(self.sent),
                              dict(self.received))
        jump = ahead(snapshot_id, self.current_id)
        for step in range(max(1, jump - self.window + 1), jump + 1):
            self.records[next_id(self.current_id, step)] = Record(
                local, {peer: [] for peer in self.peers}, {})
        while len(self.records) > self.window:
            self.records.popitem(last=False)
        first = next_id(self.current_id)
        self.current_id = snapshot_id
        return Taken(first, snapshot_id, trigger, local.sent_before)

    # Channels.

    def sent_to(self, peer: str) -> int:
        """Counts an APP message to peer; returns its position on the channel."""
        self.sent[peer] += 1
        return self.sent[peer]

    def received_from(self, peer: str, stamp: int, seq: int, message: dict[str, Any]):
        """An APP message from peer, after the rule was applied to its stamp."""
        self.received[peer] += 1
        if not self.records_channels:
            return
        item = None
        for snapshot_id in reversed(self.records):   # newest first
            if not is_newer(snapshot_id, stamp):
                break
            item = item or {"id": message["id"], "seq": seq, "stamp": stamp, "message": message}
            self.records[snapshot_id].in_flight[peer].append(item)

    def count_from(self, peer: str, first: int, last: int, sent_before: int):
        """peer sent us sent_before APP messages before its snapshot for first..last."""
        for snapshot_id, record in self.records.items():
            if ahead(snapshot_id, first) >= 0 and ahead(last, snapshot_id) >= 0:
                record.peer_sent[peer] = sent_before

    # Reporting.

    def complete(self, record: Record) -> bool:
        if not self.records_channels:
            return True
        return all(record.local.received_before[peer] + len(record.in_flight[peer])
                   == record.peer_sent.get(peer, -1) for peer in self.peers)

    def finished_id(self) -> int:
        """The newest ID whose local and channel state are complete (0: none kept)."""
        for snapshot_id in reversed(self.records):
            if self.complete(self.records[snapshot_id]):
                return snapshot_id
        return 0

    def report(self, snapshot_id: int) -> Report:
        """The report for snapshot_id as it stands; LookupError if no longer kept."""
        if is_newer(snapshot_id, self.current_id):
            return Report(self.process, snapshot_id, taken=False, current_id=self.current_id,
                          finished_id=self.finished_id())
        record = self.records.get(snapshot_id)
        if record is None:
            raise LookupError(f"snapshot {snapshot_id} is not kept "
                              f"(the newest {self.window} IDs are)")
        local = record.local
        channels = {peer: ChannelState(local.sent_before[peer], local.received_before[peer],
                                       list(record.in_flight[peer]))
                    for peer in self.peers} if self.records_channels else {}
        return Report(self.process, snapshot_id, taken=True, trigger=local.trigger,
                      taken_at_us=local.taken_at_us, local_state=local.state,
                      channels=channels, current_id=self.current_id,
                      finished_id=self.finished_id())
