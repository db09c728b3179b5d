"""Reports by distinct state: one answer for a run of consecutive IDs that
carries one report per distinct cut, each with the IDs it stands for.

At a high snapshot rate most IDs of a run see no message at a process, so
its local and channel state is the same for many consecutive IDs: a report
of ID N differs from that of N + 1 only in its snapshot_id.  A Cut is such a
stretch, first .. first + count - 1, with the report of its first ID; the
report of any other ID of it is the same with that ID (`report_of`).

    {"v":1,"op":"snapshot"|"report","first":F,"count":C[,"base":M]}
    -> {"v":1,"op":"cuts","first":F,"count":C,"cuts":[
          {"first":F,"count":n,"report":{..}} | {"first":F,"count":n,"error":".."}, ..]}

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
    """The answer message; to_message encodes a report (with its base)."""
    return {"v": oob.VERSION, "op": "cuts", "first": first, "count": count,
            "cuts": [{"first": c.first, "count": c.count,
                      **({"error": c.answer} if isinstance(c.answer, str)
                         else {"report": to_message(c.answer)})} for c in cuts]}


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
    cuts, at, left = [], first, count
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
            answer_ = entry["error"]
        else:
            if not isinstance(entry.get("report"), dict):
                raise ProtocolError(f"the cut from {at} holds no report and no error")
            answer_ = Report.from_message(entry["report"])
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
