"""Rolling an in-group process back to a stored snapshot.

    restore = load("snapshots.db", 42, "b1", peers=["b2"])   # RestoreRefused: one line
    runtime.serve(app, restore)     # the state at once; the replay when resumed

What a snapshot holds of process p (control/store.py keeps p's report): its
local state at the cut, and for each peer q the messages q sent before its
own cut that reached p after p's, the state of the channel q -> p.
Restoring p is taking that local state and delivering those messages again,
each once, in the order q sent them (their channel sequence).

The whole in-group is restored from one snapshot, together: its channels
start empty and are counted from zero at both ends, so a replayed message
is not counted as received.  No process may replay before every other one
listens (a replayed transfer sends a credit), so a restored process binds
its sockets, takes its state and holds until the controller's "resume"
(traffic/oob/protocol.py); topologies/rollback.py does all of it.  A restored
process starts at the newest snapshot ID the store may have used, not at
the snapshot's own: IDs in between belong to the history rolled back, a
request for one is refused (not kept), and the controller's next run
starts after them.

Refused, whatever --force says: a store or snapshot that is not there, a
snapshot without this process's state (one judged by its batch's schedules
holds no in-group reports), and a state of another service, version or
layout (shards, replicas), which this program would misread.  Refused
unless forced: a snapshot that was not accepted (rejected or incomplete),
or that lacks a report of an in-group process.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Protocol

from beaver.control.engine.record import Outcome, SnapshotRecord
from beaver.control.store import SnapshotStore, StoreError
from beaver.control.engine.window import wire_id


class RestoreRefused(Exception):
    """The snapshot cannot be, or without --force should not be, restored."""


class Restorable(Protocol):
    def layout(self) -> dict[str, Any]:
        """What a state must have been taken under: service, version, shards."""

    def restore(self, state: Any) -> None:
        """Takes a snapshot's local state, its layout already checked."""


@dataclass(frozen=True)
class Restore:
    process: str
    number: int                       # the snapshot's number in the store
    outcome: Outcome
    forced: bool                      # --force: the checks that may be overridden were
    resume_id: int                    # the wire ID the process starts at
    state: Any
    in_flight: dict[str, list[dict]]  # per peer: its messages in flight to this process
    load_ms: float = 0.0              # reading and checking it in the store

    def check(self, app: Any):
        """RestoreRefused unless app can take this state."""
        if not hasattr(app, "restore"):
            raise RestoreRefused(f"{self.process}: {type(app).__name__} cannot be restored")
        ours = app.layout()
        theirs = self.state.get("layout") if isinstance(self.state, dict) else None
        if not isinstance(theirs, dict):
            raise RestoreRefused(f"{self.process}: snapshot {self.number} holds a state "
                                 "without a layout, from a program that cannot be restored")
        differ = [key for key in dict.fromkeys([*ours, *theirs])
                  if ours.get(key) != theirs.get(key)]
        if differ:
            raise RestoreRefused(f"{self.process}: snapshot {self.number} was taken under "
                                 "another program or layout: " + "; ".join(
                                     f"{key} {_text(theirs.get(key))} there, "
                                     f"{_text(ours.get(key))} here" for key in differ))

    def replay(self) -> list[tuple[str, dict]]:
        """(sender, message) to deliver again, each channel in its sender's order."""
        return [(peer, item["message"]) for peer in sorted(self.in_flight)
                for item in sorted(self.in_flight[peer], key=lambda item: item["seq"])]


def _text(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def parse(text: str) -> tuple[Path, int]:
    """STORE:ID -> (path, number); ValueError if it is not that."""
    path, sep, number = text.rpartition(":")
    if not sep or not path or not number.isdigit():
        raise ValueError(f"{text!r} is not STORE:ID (a snapshot store file and a snapshot "
                         "number)")
    return Path(path), int(number)


def open_existing(path: Path) -> SnapshotStore:
    """The store at path; RestoreRefused if there is none (never a new, empty one)."""
    if not path.is_file():
        raise RestoreRefused(f"no snapshot store at {path}")
    try:
        return SnapshotStore(path, read_only=True)
    except StoreError as e:
        raise RestoreRefused(str(e)) from None


def refuse(record: SnapshotRecord | None, number: int, store: Path,
           processes: Iterable[str], force: bool = False):
    """RestoreRefused unless snapshot `number` may roll back processes."""
    if record is None:
        raise RestoreRefused(f"no snapshot {number} in {store}: never taken, or not judged "
                             "yet")
    if not record.reports:
        raise RestoreRefused(f"snapshot {number} holds no in-group state: judged by its "
                             "batch's schedules, or taken without reports")
    if force:
        return
    if record.verdict.outcome is not Outcome.ACCEPTED:
        raise RestoreRefused(f"snapshot {number} was {record.verdict.outcome.value} "
                             f"({record.verdict.reason}); --force restores it all the same")
    missing = [p for p in processes
               if p not in record.reports or not record.reports[p].taken]
    if missing:
        raise RestoreRefused(f"snapshot {number} has no state of {', '.join(missing)}; "
                             "--force restores the others all the same")


def load(store: Path, number: int, process: str, peers: Iterable[str],
         force: bool = False) -> Restore:
    """process's restore from snapshot `number` of store."""
    began = time.monotonic()
    peers = list(peers)
    snapshots = open_existing(store)
    try:
        record = snapshots.get(number)
        resume_number = max(snapshots.reserved_through, number)
    except StoreError as e:
        raise RestoreRefused(str(e)) from None
    finally:
        snapshots.close()
    refuse(record, number, store, [process, *peers], force)
    report = record.reports.get(process)
    if report is None or not report.taken:
        raise RestoreRefused(f"snapshot {number} has no state of {process}")
    strangers = sorted(set(report.channels) - set(peers))
    if strangers:
        raise RestoreRefused(f"{process}: snapshot {number} has channels from "
                             f"{', '.join(strangers)}, not peers of this process")
    return Restore(process, number, record.verdict.outcome,
                   forced=force, resume_id=wire_id(resume_number), state=report.local_state,
                   in_flight={peer: list(channel.in_flight)
                              for peer, channel in report.channels.items()},
                   load_ms=(time.monotonic() - began) * 1000)


def newest_restorable(store: SnapshotStore, processes: Iterable[str]) -> SnapshotRecord | None:
    """The newest snapshot safe to roll processes back to: accepted, with
    every one's state."""
    processes = list(processes)
    for number in store.with_reports(Outcome.ACCEPTED):
        record = store.get(number)
        if all(p in record.reports and record.reports[p].taken for p in processes):
            return record
    return None
