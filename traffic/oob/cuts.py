"""Reports by distinct state: one answer for a run of consecutive IDs that
carries one report per distinct cut, each with the IDs it stands for.

At a high snapshot rate most IDs of a run see no message at a process, so
its local and channel state is the same for many consecutive IDs: a report
of ID N differs from that of N + 1 only in its snapshot_id.  A Cut is such a
stretch, first .. first + count - 1, with the report of its first ID; the
report of any other ID of it is the same with that ID (`report_of`).

    {"v":1,"op":"snapshot"|"report","first":F,"count":C[,"base":M]}
    -> {"v":1,"op":"cuts","first":F,"count":C,"process":P,"current_id":N,"finished_id":D,
        "taken":T,"trigger":G,"items":[in-flight message, ..],"cuts":[
          {"first":F,"count":n,"report":{..}} | {"first":F,"count":n,"error":".."}, ..]}

A cut's report leaves out "v", "op", its snapshot_id (the cut's first) and
what the answer holds for every report (process, current_id, finished_id,
made at one moment; taken and trigger, alike in nearly every cut), unless
its own differ; `decode` fills them in.  A report's channels go as
{peer: [sent_before, received_before, in_flight]}, the in-flight messages
as indexes into "items".
Its local state goes as little as it can (`encode`): the states of a run
drift a few keys a cut, so each goes as its changes from the cut before.
A taken report's local state is, in place of "local_state":
- "same_state": true: the previous cut's state, when the process recorded
  no other in between, or captured the same state object again (the
  key-value store's capture while nothing changed);
- "delta": {"previous": P, "changes": ..}: what changed since the state of
  the previous cut, whose first ID is P (traffic/oob/deltas.py);
- "delta": {"base": M, "changes": ..}: what changed since the state at M,
  the request's base, while the process keeps it: the first state of an
  answer (or the first after an error or a state not taken), which has no
  previous cut to go from; without a base that one goes whole.
"The previous cut" is the entry just before, and only a taken report is
one: after an error or a report not taken, or first in the answer, a chain
starts anew.

The cuts of an answer lie end to end from F and cover exactly C IDs.
Every byte is hostile: `decode` refuses anything else (overlapping, outside
the run, a count that does not add up, more cuts than IDs), and any state
it cannot rebuild (changes from a base other than the one held or the
previous cut's, changes that do not apply), with one ProtocolError, so
that no ID is ever given a state that was not reported for it.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, NamedTuple

from beaver.p4src.ids import ID_SPACE, next_id
from beaver.traffic.oob import deltas
from beaver.traffic.oob import protocol as oob
from beaver.traffic.oob.protocol import ProtocolError, Report

MAX_COUNT = 1 << 16   # IDs in one run: far more than a ring's worth, far less than the space


# Built a cut at a time on both sides: a named tuple, immutable like a
# frozen dataclass at a fraction of its cost to build.
class Cut(NamedTuple):
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
           base: tuple[int, Any] | None = None) -> dict[str, Any]:
    """The answer message; base: (M, the state at M) the asker holds.

    Nothing goes twice: an in-flight message is in "items" once, and each
    channel's in_flight lists its indexes; what every report of the answer
    shares goes once, in the answer (`_shared`); each local state goes as
    its changes from the previous cut's ("same_state" when it is that one
    record's), the first of a chain from base."""
    items: dict[int, int] = {}   # id(item) -> its index in the answer's items
    table: list[dict] = []
    shared = _shared(cuts)
    entries, previous = [], None
    for c in cuts:
        report = c.answer
        if isinstance(report, str):
            entries.append({"first": c.first, "count": c.count, "error": report})
            previous = None
            continue
        # Loops, not comprehensions: each of those is a call (CPython 3.11),
        # made for every cut, and at one ID a request a run is all cuts.
        channels = {}
        for peer, channel in report.channels.items():
            indexes = []
            for item in channel.in_flight:
                indexes.append(_index(item, items, table))
            channels[peer] = [channel.sent_before, channel.received_before, indexes]
        message = {"taken_at_us": report.taken_at_us, "channels": channels}
        if report.snapshot_id != c.first:   # never from Snapshots; decode refuses it
            message["snapshot_id"] = report.snapshot_id
        own = (report.process, report.current_id, report.finished_id, report.taken,
               report.trigger)
        if own != shared:   # only those of its own: a report not taken, its taken and trigger
            message.update((name, value) for name, value, answer_s in zip(_SHARED, own, shared)
                           if value != answer_s)
        if report.delta is not None:   # never stored or passed on without its state
            raise ValueError(f"{report.process}'s report of {report.snapshot_id} "
                             "is not rebuilt")
        state = report.local_state
        if not report.taken:
            message["local_state"] = state
        elif previous is not None:
            # one record cut where a stamp falls, or one state captured again
            if state is previous.local_state:
                message["same_state"] = True
            else:
                message["delta"] = {"previous": previous.snapshot_id,
                                    "changes": deltas.diff(previous.local_state, state)}
        elif base is not None:
            message["delta"] = {"base": base[0], "changes": deltas.diff(base[1], state)}
        else:
            message["local_state"] = state
        entries.append({"first": c.first, "count": c.count, "report": message})
        previous = report if report.taken else None
    return {"v": oob.VERSION, "op": "cuts", "first": first, "count": count,
            **(dict(zip(_SHARED, shared)) if shared else {}), "items": table,
            "cuts": entries}


# A run's reports are made at one moment by one process: these are the
# same in each (taken and trigger in nearly each), so they go once, in the
# answer, and decode gives them to every report that does not carry its own.
_SHARED = ("process", "current_id", "finished_id", "taken", "trigger")


def _shared(cuts: list[Cut]) -> tuple | None:
    """_SHARED's values in the first report of cuts (None: no report)."""
    report = next((c.answer for c in cuts if not isinstance(c.answer, str)), None)
    return None if report is None else (report.process, report.current_id, report.finished_id,
                                        report.taken, report.trigger)


def _index(item: dict, items: dict[int, int], table: list[dict]) -> int:
    if id(item) not in items:
        items[id(item)] = len(table)
        table.append(item)
    return items[id(item)]


def _resolved(message: Any, table: list, shared: dict[str, Any], at: int) -> dict:
    """A cut's report message as Report.from_message reads it: what the
    answer holds for every report (shared) and its ID (at) filled in where
    it carries none of its own, its in-flight indexes made messages."""
    if not isinstance(message, dict):
        raise ProtocolError("a cut's report must be a JSON object")
    message = {"v": oob.VERSION, "op": "report", "snapshot_id": at, **shared, **message}
    channels = message.get("channels", {})
    if not isinstance(channels, dict):
        raise ProtocolError("a cut's channels must be a JSON object")
    message["channels"] = {}
    for peer, channel in channels.items():
        if not (isinstance(channel, list) and len(channel) == 3):
            raise ProtocolError(f"channel {peer!r} must be [sent_before, received_before, "
                                "in_flight]")
        sent_before, received_before, indexes = channel
        if not (isinstance(indexes, list) and all(
                type(i) is int and 0 <= i < len(table) for i in indexes)):
            raise ProtocolError(f"channel {peer!r}: in_flight must index the answer's "
                                f"{len(table)} items")
        message["channels"][peer] = {"sent_before": sent_before,
                                     "received_before": received_before,
                                     "in_flight": [table[i] for i in indexes]}
    return message


def _report(message: dict, previous: Report | None, held: tuple[int, Any] | None) -> Report:
    """A cut's report with its whole local state: the previous cut's
    (previous: that cut's rebuilt report, if taken), or rebuilt from it or
    from held (M, the state at M) when it came as changes."""
    same = message.pop("same_state", False)
    if type(same) is not bool:
        raise ProtocolError(f"a cut's same_state must be true or false, not {same!r}")
    if same:
        if previous is None:
            raise ProtocolError("a cut with the previous cut's state, after none")
        if "local_state" in message or "delta" in message:
            raise ProtocolError("a cut with the previous cut's state carries one of its own")
        message["local_state"] = previous.local_state
    report = Report.from_message(message)
    if report.delta is None or "previous" not in report.delta:
        return report.rebuilt(held)
    after = report.delta["previous"]
    if "base" in report.delta:
        raise ProtocolError("a cut's changes from both a base and the previous cut")
    if previous is None:
        raise ProtocolError(f"the cut from {report.snapshot_id}: changes from {after!r}'s "
                            "state, after no cut taken")
    if after != previous.snapshot_id or type(after) is not int:
        raise ProtocolError(f"the cut from {report.snapshot_id}: changes from {after!r}'s "
                            f"state, but the previous cut is {previous.snapshot_id}'s")
    return report.applied(previous.local_state)


def decode(answer: dict[str, Any], first: int, count: int,
           held: tuple[int, Any] | None = None) -> list[Cut]:
    """The cuts of an answer to the request for first .. first + count - 1
    from held (M, the state at M: the request's base), each local state
    whole; ProtocolError unless they lie end to end, cover exactly that run
    and every state is rebuilt."""
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
    shared = {name: answer[name] for name in _SHARED if name in answer}
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
            answer_ = _report(_resolved(entry["report"], table, shared, at), previous, held)
            previous = answer_ if answer_.taken else None
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
