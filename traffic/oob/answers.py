"""What an in-group process answers the controller's out-of-band requests
(traffic/oob/protocol.py), whichever transport its runtime speaks: status, and
snapshot or report for one ID ("id"), many ("ids", answered in order) or a
run ("first", "count": one report per distinct cut, traffic/oob/cuts.py),
each local state as its changes from the "base" the controller holds, if
this process still keeps that one (in a run, from the cut before)."""
from __future__ import annotations

import functools
import threading
from typing import Any, Callable, Mapping

from beaver.traffic.oob import cuts as by_cut
from beaver.traffic.oob import protocol as oob
from beaver.p4src.ids import ID_SPACE, newest, next_id

from beaver.traffic.oob.server import error
from beaver.traffic.runtime.snapshots import Snapshots, Taken


def answer(message: dict[str, Any], process: str, snapshots: Snapshots | None,
           lock: threading.RLock, drops: Mapping[str, int],
           took: Callable[[Taken | None], None]) -> dict[str, Any]:
    """The answer to message; took handles a snapshot just recorded."""
    op = message.get("op")
    if op == "status":
        with lock:
            current = snapshots.current_id if snapshots else 0
            finished = snapshots.finished_id() if snapshots else 0
            dropped = dict(drops)
        return {"v": oob.VERSION, "op": "status", "process": process,
                "current_id": current, "finished_id": finished, "drops": dropped}
    if op not in ("snapshot", "report"):
        raise oob.ProtocolError(f"unknown op {op!r}")
    run = "first" in message
    if run and ("id" in message or "ids" in message):
        raise oob.ProtocolError('a request carries "id", "ids" or "first", only one')
    first, count = by_cut.requested_run(message) if run else (None, None)
    ids = [] if run else requested_ids(message)
    base_id = message.get("base")
    if base_id is not None and not (type(base_id) is int and 0 <= base_id < ID_SPACE):
        raise oob.ProtocolError(f"bad base {base_id!r}")
    if snapshots is None:
        raise oob.ProtocolError(f"{process} runs without snapshots (mode off)")
    if run:
        with lock:
            if op == "snapshot":   # one local state for the run, as a jump to its last
                took(snapshots.oob(next_id(first, count - 1)))
            cuts = snapshots.cuts(first, count)
            base = _base(snapshots, base_id)
        return by_cut.encode(first, count, cuts, base)
    with lock:
        if op == "snapshot":   # one local state serves them all, as a jump does
            took(snapshots.oob(functools.reduce(newest, ids)))
        reports = [_report(snapshots, snapshot_id) for snapshot_id in ids]
        base = _base(snapshots, base_id)
    # Diffed and encoded outside the lock (recorded states never change):
    # requests go on meanwhile.
    if "ids" not in message:
        if isinstance(reports[0], str):
            raise oob.ProtocolError(reports[0])
        return reports[0].to_message(base)
    return {"v": oob.VERSION, "op": "reports",
            "reports": [error(r) if isinstance(r, str) else r.to_message(base)
                        for r in reports]}


def _base(snapshots: Snapshots, base_id: int | None) -> tuple[int, Any] | None:
    """(base_id, its local state) while this process keeps it, else None:
    then the whole states go."""
    if base_id is None:
        return None
    try:
        return base_id, snapshots.local_state(base_id)
    except LookupError:
        return None


def requested_ids(message: dict[str, Any]) -> list[int]:
    """The IDs of a request: its "id", or its "ids" (at most oob.MAX_IDS)."""
    if "ids" not in message:
        ids = [message.get("id")]
    elif "id" in message:
        raise oob.ProtocolError('a request carries "id" or "ids", not both')
    elif not (isinstance(message["ids"], list) and message["ids"]):
        raise oob.ProtocolError(f'"ids" must be a non-empty list, not {message["ids"]!r}')
    elif len(message["ids"]) > oob.MAX_IDS:
        raise oob.ProtocolError(f'{len(message["ids"])} ids: at most {oob.MAX_IDS} '
                                "per request")
    else:
        ids = message["ids"]
    for snapshot_id in ids:
        if not (type(snapshot_id) is int and 0 <= snapshot_id < ID_SPACE):
            raise oob.ProtocolError(f"bad snapshot id {snapshot_id!r}")
    return ids


def _report(snapshots: Snapshots, snapshot_id: int) -> oob.Report | str:
    """The report for snapshot_id, or why there is none."""
    try:
        return snapshots.report(snapshot_id)
    except LookupError as e:
        return str(e)
