"""One in-group process's snapshot state: the rule, the records, the channels.

No sockets here: the runtime calls in with what arrived and sends what this
says to send, all under its lock.

The rule (Lai-Yang style, no FIFO needed): a message carrying a newer ID
than the process's makes it record its local state before the message is
handled.  A jump from ID a to b records one local state that serves every ID
in (a, b], and one Record for the whole range, so that a jump costs the
same whatever its length.  Records cover the newest `window` IDs, like the
switch's ring.

Channel state: an APP message from peer q stamped older than N that arrives
after this process's snapshot N was in flight at the cut.  The channel q -> p
is complete for N when p's received_before + len(in_flight) equals q's
sent_before, which q tells p after its own snapshot, on its next message to p
or in a COUNT (peering.py).
"""
from __future__ import annotations

import bisect
import enum
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Iterable, NamedTuple

from beaver.traffic.oob.cuts import Cut
from beaver.traffic.oob.protocol import ChannelState, Report
from beaver.p4src.ids import ID_SPACE, ID_WINDOW, ahead, is_newer, next_id
from beaver.p4src.wire import RING_SIZE


class Mode(str, enum.Enum):
    BEAVER = "beaver"      # SLB marks, peer stamps and out-of-band initiation
    LAI_YANG = "lai-yang"  # peer stamps and out-of-band initiation; SLB marks ignored
    POLLING = "polling"    # each process on its own timer; no channel state
    OFF = "off"            # no snapshot layer: the "without Beaver" baseline


# LocalSnapshot and Taken are built on every advance: named tuples, immutable
# like frozen dataclasses at a third of their cost to build.
class LocalSnapshot(NamedTuple):
    trigger: str                  # "mark", "peer", "oob" or "timer"
    taken_at_us: int
    state: Any
    sent_before: dict[str, int]   # APP messages sent to each peer before it
    received_before: dict[str, int]


@dataclass(slots=True)
class Tally:
    """A record's in-flight messages from one peer, counted for the channel
    sums: those in flight for every ID of the record, and for each other
    one the offset from the record's first ID from which it counts."""
    tallied: int = 0              # how many of the record's in_flight list are counted
    for_every_id: int = 0
    counts_from: list[int] = field(default_factory=list)   # sorted


@dataclass(slots=True)
class Record:
    """What this process knows of the IDs first..last, which one jump covered.

    An in-flight message is kept once, with its stamp: it was in flight for
    the IDs of the range newer than its stamp.  A COUNT is kept as its
    range clipped to this record, and looked up per ID.  A peer's lists are
    made when its first message or COUNT for the record comes (most records
    of a high snapshot rate see none)."""
    first: int                    # the oldest ID still kept (moves as the window slides)
    last: int
    local: LocalSnapshot
    in_flight: dict[str, list[dict]] = field(default_factory=dict)
    # per peer: arrived after the cut, stamped older than last
    counts: dict[str, list[tuple[int, int, int]]] = field(default_factory=dict)
    # per peer: (first, last, sent_before)
    newest_complete: int | None = None   # cache of Snapshots._newest_complete, unless stale
    stale: bool = True
    tallies: dict[str, Tally] = field(default_factory=dict)   # per peer, as they are needed

    def in_flight_for(self, peer: str, snapshot_id: int) -> list[dict]:
        items = self.in_flight.get(peer, ())
        if snapshot_id == self.last:   # each is stamped older than last: kept only so
            return list(items)
        return [item for item in items if is_newer(snapshot_id, item["stamp"])]

    def tally(self, peer: str) -> Tally:
        """peer's in-flight messages counted, brought up to date with those
        that arrived since the last call (each message is tallied once)."""
        tally = self.tallies.setdefault(peer, Tally())
        items = self.in_flight.get(peer, ())
        for item in items[tally.tallied:]:
            counts_from = ahead(next_id(item["stamp"]), self.first)
            if counts_from <= 0:
                tally.for_every_id += 1
            else:
                bisect.insort(tally.counts_from, counts_from)
        tally.tallied = len(items)
        return tally

    def drop_oldest(self, count: int):
        """The window slid over the oldest count IDs of this record."""
        self.first = next_id(self.first, count)
        for tally in self.tallies.values():
            now_for_every_id = bisect.bisect_right(tally.counts_from, count)
            tally.for_every_id += now_for_every_id
            tally.counts_from = [offset - count
                                 for offset in tally.counts_from[now_for_every_id:]]
        self.stale = True

    def peer_sent(self, peer: str, snapshot_id: int) -> int | None:
        """peer's sent_before for snapshot_id, from its latest COUNT that covers it."""
        for first, last, sent_before in reversed(self.counts.get(peer, ())):
            if ahead(snapshot_id, first) >= 0 and ahead(last, snapshot_id) >= 0:
                return sent_before
        return None


class Taken(NamedTuple):
    """A local snapshot just recorded, for the IDs first..last."""
    first: int
    last: int
    trigger: str


def offsets_within(oldest: int, length: int, first: int, last: int) -> range:
    """The offsets i in [0, length) for which ID oldest + i lies in first..last
    as serial numbers read it: ahead(N, first) >= 0 and ahead(last, N) >= 0.
    Over a run shorter than ID_WINDOW each condition holds on a prefix or a
    suffix, so both hold on one range, found without visiting the IDs."""
    past_first = (oldest - first) % ID_SPACE   # the condition is (past_first + i) mod 2^32 < 2^31
    from_first = (range(0, ID_WINDOW - past_first) if past_first < ID_WINDOW
                  else range(ID_SPACE - past_first, length))
    to_last = (last - oldest) % ID_SPACE       # the condition is (to_last - i) mod 2^32 < 2^31
    up_to_last = (range(0, to_last + 1) if to_last < ID_WINDOW
                  else range(to_last - ID_WINDOW + 1, length))
    return range(max(from_first.start, up_to_last.start),
                 min(from_first.stop, up_to_last.stop, length))


class Snapshots:
    def __init__(self, process: str, peers: Iterable[str], mode: Mode,
                 capture: Callable[[], Any], window: int = RING_SIZE):
        if mode is Mode.OFF:
            raise ValueError("Mode.OFF has no snapshot state")
        if not 0 < window < ID_WINDOW:
            raise ValueError(f"window {window} must be in 1..{ID_WINDOW - 1}")
        self.process = process
        self.peers = list(peers)
        self.mode = mode
        self.records_channels = mode in (Mode.BEAVER, Mode.LAI_YANG)
        self.capture = capture
        self.window = window
        self.current_id = 0
        self.records: deque[Record] = deque()   # oldest first, contiguous, ending at current_id
        # Each record's last ID unwrapped (counted on past 2^32), so that a
        # record is found by bisect in C; the first _gone belong to records
        # already dropped, cut off once they are half the list.
        self._lasts: list[int] = []
        self._gone = 0
        self.kept = 0                           # IDs the records cover, at most window
        self._finished: int | None = None       # finished_id(), None when it must be looked for
        self.sent = dict.fromkeys(self.peers, 0)
        self.received = dict.fromkeys(self.peers, 0)

    def restart_at(self, snapshot_id: int):
        """A process restored from a snapshot (restore.py), before it handles
        anything: at snapshot_id, nothing kept, its channels counted from
        zero like its peers', which are restored with it."""
        if self.records or any(self.sent.values()) or any(self.received.values()):
            raise RuntimeError(f"{self.process}: restart_at after messages were handled")
        self.current_id = snapshot_id
        self._finished = None

    # Triggers: each applies the mode's policy and returns what was taken, if anything.
    # A mark or a stamp comes with every message, and nearly all bring no newer
    # ID: that is checked (is_newer, inlined) before a call to _advance.

    def mark(self, snapshot_id: int) -> Taken | None:
        """An SLB's mark on a client's request."""
        if (self.mode is Mode.BEAVER
                and 0 < (snapshot_id - self.current_id) % ID_SPACE < ID_WINDOW):
            return self._advance(snapshot_id, "mark")
        return None

    def stamp(self, snapshot_id: int) -> Taken | None:
        """A peer's stamp."""
        if self.records_channels and 0 < (snapshot_id - self.current_id) % ID_SPACE < ID_WINDOW:
            return self._advance(snapshot_id, "peer")
        return None

    def oob(self, snapshot_id: int) -> Taken | None:
        """The controller's out-of-band initiation (sent after every SLB acknowledged)."""
        return self._advance(snapshot_id, "oob") if self.records_channels else None

    def poll(self) -> Taken | None:
        """The polling baseline's own timer: the next ID, uncoordinated."""
        if self.mode is not Mode.POLLING:
            return None
        return self._advance(next_id(self.current_id), "timer")

    def _advance(self, snapshot_id: int, trigger: str) -> Taken | None:
        # is_newer and ahead inlined: at high snapshot rates this runs for nearly every request
        jump = (snapshot_id - self.current_id) % ID_SPACE
        if not 0 < jump < ID_WINDOW:
            return None
        local = LocalSnapshot(trigger, time.time_ns() // 1000, self.capture(), dict(self.sent),
                              dict(self.received))
        covered = min(jump, self.window)
        self.records.append(Record((snapshot_id + 1 - covered) % ID_SPACE, snapshot_id, local))
        self._lasts.append((self._lasts[-1] if self._lasts else self.current_id) + jump)
        self.kept += covered
        if self.kept > self.window:
            self._expire()
        self._finished = None
        first = (self.current_id + 1) % ID_SPACE
        self.current_id = snapshot_id
        return Taken(first, snapshot_id, trigger)

    def _expire(self):
        """Drops the IDs older than the newest `window`: whole records, or the
        oldest part of one."""
        while self.kept > self.window:
            oldest = self.records[0]
            excess = self.kept - self.window
            size = ahead(oldest.last, oldest.first) + 1
            if size <= excess:
                self.records.popleft()
                self._gone += 1
                if self._gone > len(self.records):
                    del self._lasts[:self._gone]
                    self._gone = 0
                self.kept -= size
            else:
                oldest.drop_oldest(excess)
                self.kept -= excess

    def _record(self, snapshot_id: int) -> Record | None:
        """The record covering snapshot_id, if it is kept."""
        index = self._kept_index(snapshot_id)
        return None if index is None else self.records[index]

    def _kept_index(self, snapshot_id: int) -> int | None:
        """The index in records of the record covering snapshot_id, if it is
        kept (a binary search)."""
        back = ahead(self.current_id, snapshot_id)
        return self._index(back) if 0 <= back < self.kept else None

    def _index(self, back: int) -> int:
        """The index in records of the record covering the ID back IDs
        behind current_id (0 <= back < kept)."""
        return bisect.bisect_left(self._lasts, self._lasts[-1] - back, self._gone) - self._gone

    # Channels.

    def sent_to(self, peer: str) -> int:
        """Counts an APP message to peer; returns its position on the channel."""
        self.sent[peer] += 1
        return self.sent[peer]

    def received_from(self, peer: str, stamp: int, seq: int, message: dict[str, Any]):
        """An APP message from peer, after the rule was applied to its stamp.
        Kept once in every record with an ID newer than its stamp: one per
        local snapshot since, whatever the IDs they jumped."""
        self.received[peer] += 1
        if not self.records_channels:
            return
        item = None
        for record in reversed(self.records):   # newest first
            if not is_newer(record.last, stamp):
                break
            item = item or {"id": message["id"], "seq": seq, "stamp": stamp, "message": message}
            record.in_flight.setdefault(peer, []).append(item)
            record.stale = True
            self._finished = None

    def count_from(self, peer: str, first: int, last: int, sent_before: int):
        """peer sent us sent_before APP messages before its snapshot for first..last
        (kept for the IDs of that range this process keeps)."""
        if not self.records:
            return
        # Kept IDs are compared by how far they are behind current_id, in
        # [0, kept): plain integers, nearer the newer.
        current = self.current_id
        low_back, high_back = (current - first) % ID_SPACE, (current - last) % ID_SPACE
        newest = self.records[-1]
        if high_back == 0 and low_back <= (current - newest.first) % ID_SPACE:
            # the usual COUNT, from a peer that jumped to our newest ID: all in our newest record
            newest.counts.setdefault(peer, []).append((first, last, sent_before))
            newest.stale = True
            self._finished = None
            return
        if high_back <= low_back < self.kept:
            low, high = first, last   # the usual COUNT: its range is all kept
        else:
            oldest = self.records[0].first
            offsets = offsets_within(oldest, self.kept, first, last)
            if not offsets:
                return
            low, high = next_id(oldest, offsets.start), next_id(oldest, offsets.stop - 1)
            low_back, high_back = (current - low) % ID_SPACE, (current - high) % ID_SPACE
        for index in range(self._index(high_back), -1, -1):
            record = self.records[index]
            last_back = (current - record.last) % ID_SPACE
            if last_back > low_back:
                break
            clipped = (low if low_back < (current - record.first) % ID_SPACE else record.first,
                       high if last_back < high_back else record.last)
            record.counts.setdefault(peer, []).append((*clipped, sent_before))
            record.stale = True
            self._finished = None

    # Reporting.

    def _newest_complete(self, record: Record) -> int | None:
        """The newest ID of record whose channels are all complete.  The sums
        change only where an in-flight stamp or a COUNT's boundary falls, so
        each stretch between two such IDs is judged once, not each ID."""
        if not self.records_channels:
            return record.last
        if not record.stale:
            return record.newest_complete
        length = ahead(record.last, record.first) + 1
        tallies = {peer: record.tally(peer) for peer in self.peers}
        bounds = {0}
        for peer in self.peers:
            bounds.update(tallies[peer].counts_from)
            for first, last, _ in record.counts.get(peer, ()):
                bounds.update((ahead(first, record.first), ahead(last, record.first) + 1))
        starts = sorted(b for b in bounds if 0 <= b < length)
        record.newest_complete = None
        for start, stop in zip(reversed(starts), [length, *reversed(starts[1:])]):
            snapshot_id = next_id(record.first, start)
            if all(record.peer_sent(peer, snapshot_id)
                   == record.local.received_before[peer] + tallies[peer].for_every_id
                   + bisect.bisect_right(tallies[peer].counts_from, start)
                   for peer in self.peers):
                record.newest_complete = next_id(record.first, stop - 1)
                break
        record.stale = False
        return record.newest_complete

    def finished_id(self) -> int:
        """The newest ID whose local and channel state are complete (0: none kept).
        Cached until something changes; then looked for newest record first."""
        if self._finished is None:
            self._finished = next((found for record in reversed(self.records)
                                   if (found := self._newest_complete(record)) is not None), 0)
        return self._finished

    def local_state(self, snapshot_id: int) -> Any:
        """The local state recorded for snapshot_id; LookupError if it is
        not kept or not reached."""
        record = self._record(snapshot_id)
        if record is None:
            raise LookupError(f"snapshot {snapshot_id} is not kept")
        return record.local.state

    def report(self, snapshot_id: int) -> Report:
        """The report for snapshot_id as it stands; LookupError if no longer kept."""
        if is_newer(snapshot_id, self.current_id):
            return Report(self.process, snapshot_id, taken=False, current_id=self.current_id,
                          finished_id=self.finished_id())
        record = self._record(snapshot_id)
        if record is None:
            raise LookupError(f"snapshot {snapshot_id} is not kept "
                              f"(the newest {self.window} IDs are)")
        return self._report_in(record, snapshot_id)

    def _report_in(self, record: Record, snapshot_id: int,
                   finished_id: int | None = None) -> Report:
        """The report for snapshot_id, which record covers (finished_id:
        finished_id(), if the caller has it)."""
        local = record.local
        channels = {}
        if self.records_channels:
            for peer in self.peers:   # a loop: a comprehension is a call (CPython 3.11)
                channels[peer] = ChannelState(local.sent_before[peer],
                                              local.received_before[peer],
                                              record.in_flight_for(peer, snapshot_id))
        return Report(self.process, snapshot_id, True, local.trigger, local.taken_at_us,
                      local.state, channels, self.current_id,
                      self.finished_id() if finished_id is None else finished_id)

    def _cut_singles(self, cuts: list[Cut], index: int, left: int, finished: int) -> int:
        """Appends a cut for each record of one ID from records[index] on,
        at most left of them, in order; returns how many.  At one ID a
        request a run is nearly all such records: walked in order, without
        the search and the serial-number arithmetic a record of many IDs
        needs."""
        taken = 0
        for record in islice(self.records, index, None):
            if taken == left or record.first != record.last:
                break
            cuts.append(Cut(record.last, 1, self._report_in(record, record.last, finished)))
            taken += 1
        return taken

    def cuts(self, first: int, count: int) -> list[Cut]:
        """The reports of IDs first .. first + count - 1 as they stand, one
        per distinct state (traffic/oob/cuts.py): within a record the report
        changes only where an in-flight message's stamp falls, so the run is
        cut there, at the records' edges, at the newest ID reached and at the
        oldest kept; the IDs not kept share one error.  The first record is
        searched for, the others follow it in order (records are contiguous)."""
        cuts, at, left, index = [], first, count, None
        finished = self.finished_id()   # the same for every report of the run
        while left:
            if is_newer(at, self.current_id):   # so is every later ID of the run
                cuts.append(Cut(at, left, self.report(at)))
                break
            index = self._kept_index(at) if index is None else index + 1
            if index is None:   # older than every ID kept
                kept_from = self.records[0].first if self.records else next_id(self.current_id)
                size = min(left, ahead(kept_from, at))
                cuts.append(Cut(at, size, f"snapshots {at}..{next_id(at, size - 1)} are not "
                                          f"kept (the newest {self.window} IDs are)"))
            else:
                record = self.records[index]
                if record.first == record.last:   # as at a snapshot or more a request
                    size = self._cut_singles(cuts, index, left, finished)
                    index += size - 1
                    at, left = next_id(at, size), left - size
                    continue
                size = min(left, ahead(record.last, at) + 1)
                starts = {0} | {offset for items in record.in_flight.values() for item in items
                                if 0 < (offset := ahead(next_id(item["stamp"]), at)) < size}
                bounds = sorted(starts) + [size]
                cuts.extend(Cut(next_id(at, start), stop - start,
                                self._report_in(record, next_id(at, start), finished))
                            for start, stop in zip(bounds, bounds[1:]))
            at, left = next_id(at, size), left - size
        return cuts
