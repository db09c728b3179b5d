"""Reports by distinct state: one answer for a run of consecutive IDs that
carries one report per distinct cut, each with the IDs it stands for.

At a high snapshot rate most IDs of a run see no message at a process, so
its local and channel state is the same for many consecutive IDs: a report
of ID N differs from that of N + 1 only in its snapshot_id.  A Cut is such a
stretch, first .. first + count - 1, with the report of its first ID; the
report of any other ID of it is the same with that ID (`report_of`).

    {"v":1,"op":"snapshot"|"report","first":F,"count":C[,"base":M]}
    -> {"v":1,"op":"cuts","first":F,"count":C,"items":[in-flight message, ..],"cuts":[
          {"first":F,"count":n,"report":{..}} | {"first":F,"count":n,"error":".."}, ..]}

A report's channels list their in-flight messages as indexes into "items",
and a cut whose local state is the previous cut's says "same_state": true
in place of its local_state or delta (`encode`).

The cuts of an answer lie end to end from F and cover exactly C IDs.
Every byte is hostile: `decode` refuses anything else (overlapping, outside
the run, a count that does not add up, more cuts than IDs) with one
ProtocolError, so that no ID is ever given a state that was not reported
for it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from beaver.p4src.ids import ID_SPACE, next_id
from beaver.traffic.oob import protocol as oob
from beaver.traffic.oob.protocol import ProtocolError, Report

MAX_COUNT = 1 << 16   # IDs in one run: far more than a ring's worth, far less than the space


@dataclass(frozen=True)
class Cut:
    """IDs first .. first + count - 1 (mod 2^32) and their one answer: a
    Report of `first`, or why there is none (an error's text)."""
    first: int
    count: int
    answer: Report | str

    def ids(self) -> list[int]:
        return [next_id(self.first, i) for i in range(self.count)]

    def report_of(self, snapshot_id: int) -> Report | str:
        """This cut's answer for one of its IDs."""
        if isinstance(self.answer, str):
            return self.answer
        return replace(self.answer, snapshot_id=snapshot_id)


def requested_run(message: dict[str, Any]) -> tuple[int, int]:
    """(first, count) of a run request; ProtocolError if malformed."""
    first, count = message.get("first"), message.get("count")
    if not (type(first) is int and 0 <= first < ID_SPACE):
        raise ProtocolError(f"bad first {first!r}")
    if not (type(count) is int and 1 <= count <= MAX_COUNT):
        raise ProtocolError(f"bad count {count!r}: a run holds 1..{MAX_COUNT} IDs")
    return first, count


def encode(first: int, count: int, cuts: list[Cut],
           to_message: Callable[[Report], dict[str, Any]]) -> dict[str, Any]:
    """The answer message; to_message encodes a report (with its base).

    Nothing goes twice: an in-flight message is in "items" once, and each
    channel's in_flight lists its indexes; a cut whose local state is the
    previous cut's (one record, cut where a stamp falls) says "same_state"
    in its place."""
    items: dict[int, int] = {}   # id(item) -> its index in the answer's items
    table: list[dict] = []
    entries, previous = [], None
    for c in cuts:
        if isinstance(c.answer, str):
            entries.append({"first": c.first, "count": c.count, "error": c.answer})
            previous = None
            continue
        same = (previous is not None and c.answer.taken
                and c.answer.local_state is previous.local_state)
        bare = replace(c.answer, channels={})   # its channels go by index, below
        message = bare.to_message() if same else to_message(bare)
        if same:
            del message["local_state"]
            message["same_state"] = True
        message["channels"] = {
            peer: {"sent_before": channel.sent_before,
                   "received_before": channel.received_before,
                   "in_flight": [_index(item, items, table) for item in channel.in_flight]}
            for peer, channel in c.answer.channels.items()}
        entries.append({"first": c.first, "count": c.count, "report": message})
        previous = c.answer if c.answer.taken else None
    return {"v": oob.VERSION, "op": "cuts", "first": first, "count": count, "items": table,
            "cuts": entries}


def _index(item: dict, items: dict[int, int], table: list[dict]) -> int:
    if id(item) not in items:
        items[id(item)] = len(table)
        table.append(item)
    return items[id(item)]


def _resolved(message: Any, table: list, previous: dict | None) -> dict:
    """A cut's report message as Report.from_message reads it: its in-flight
    indexes made messages, its "same_state" the previous cut's state."""
    if not isinstance(message, dict):
        raise ProtocolError("a cut's report must be a JSON object")
    message = dict(message)
    if message.pop("same_state", False) is True:
        if previous is None:
            raise ProtocolError("a cut with the previous cut's state, after none")
        for name in ("local_state", "delta"):
            if name in previous:
                message[name] = previous[name]
    channels = message.get("channels", {})
    if not isinstance(channels, dict):
        raise ProtocolError("a cut's channels must be a JSON object")
    message["channels"] = {}
    for peer, channel in channels.items():
        indexes = channel.get("in_flight") if isinstance(channel, dict) else None
        if not (isinstance(indexes, list) and all(
                type(i) is int and 0 <= i < len(table) for i in indexes)):
            raise ProtocolError(f"channel {peer!r}: in_flight must index the answer's "
                                f"{len(table)} items")
        message["channels"][peer] = {**channel, "in_flight": [table[i] for i in indexes]}
    return message


def decode(answer: dict[str, Any], first: int, count: int) -> list[Cut]:
    """The cuts of an answer to the request for first .. first + count - 1;
    ProtocolError unless they lie end to end and cover exactly that run."""
    entries = answer.get("cuts")
    if answer.get("op") != "cuts" or not isinstance(entries, list):
        raise ProtocolError(f"expected op 'cuts', got {answer.get('op')!r}")
    if answer.get("first") != first or answer.get("count") != count:
        raise ProtocolError(f"asked for {count} IDs from {first}, answered "
                            f"{answer.get('count')!r} from {answer.get('first')!r}")
    if not 1 <= len(entries) <= count:
        raise ProtocolError(f"{len(entries)} cuts for {count} IDs")
    table = answer.get("items", [])
    if not isinstance(table, list):
        raise ProtocolError("an answer's items must be a list")
    cuts, at, left, previous = [], first, count, None
    for entry in entries:
        if not isinstance(entry, dict):
            raise ProtocolError("a cut must be a JSON object")
        cut_first, cut_count = entry.get("first"), entry.get("count")
        if cut_first != at or type(cut_first) is not int:
            raise ProtocolError(f"a cut from {cut_first!r} where {at} was due "
                                "(cuts lie end to end from the first ID)")
        if not (type(cut_count) is int and 1 <= cut_count <= left):
            raise ProtocolError(f"a cut of {cut_count!r} IDs from {at}: {left} were left")
        if "error" in entry:
            if not isinstance(entry["error"], str):
                raise ProtocolError("a cut's error must be text")
            answer_, previous = entry["error"], None
        else:
            if not isinstance(entry.get("report"), dict):
                raise ProtocolError(f"the cut from {at} holds no report and no error")
            message = _resolved(entry["report"], table, previous)
            answer_ = Report.from_message(message)
            previous = message if answer_.taken else None
            if answer_.snapshot_id != at:
                raise ProtocolError(f"the cut from {at} reports {answer_.snapshot_id}")
        cuts.append(Cut(at, cut_count, answer_))
        at, left = next_id(at, cut_count), left - cut_count
    if left:
        raise ProtocolError(f"the cuts cover {count - left} of {count} IDs")
    return cuts


def per_id(cuts: list[Cut]) -> dict[int, Report | str]:
    """Every ID's answer, rebuilt from the cuts."""
    return {snapshot_id: cut.report_of(snapshot_id) for cut in cuts for snapshot_id in cut.ids()}
