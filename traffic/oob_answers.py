"""What an in-group process answers the controller's out-of-band requests
(control/oob.py), whichever transport its runtime speaks."""
from __future__ import annotations

import threading
from typing import Any, Callable, Mapping

from beaver.control import oob
from beaver.p4src.ids import ID_SPACE

from .snapshots import Snapshots, Taken


def answer(message: dict[str, Any], process: str, snapshots: Snapshots | None,
           lock: threading.RLock, drops: Mapping[str, int],
           took: Callable[[Taken | None], None]) -> dict[str, Any]:
    """status, snapshot (initiate) or report; took handles a snapshot just recorded."""
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
    snapshot_id = message.get("id")
    if not (type(snapshot_id) is int and 0 <= snapshot_id < ID_SPACE):
        raise oob.ProtocolError(f"bad snapshot id {snapshot_id!r}")
    if snapshots is None:
        raise oob.ProtocolError(f"{process} runs without snapshots (mode off)")
    with lock:
        if op == "snapshot":
            took(snapshots.oob(snapshot_id))
        try:
            report = snapshots.report(snapshot_id)
        except LookupError as e:
            raise oob.ProtocolError(str(e)) from None
    return report.to_message()   # outside the lock: requests go on meanwhile
