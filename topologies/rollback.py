"""Rolling a running topology's whole in-group back to one snapshot.

    rolled = roll_back(store, 42, config.processes, launcher)

1. The snapshot is checked for every in-group process (restore.refuse)
   before anything is stopped: a refusal leaves the service as it was.
2. Every in-group process is stopped (the launcher's stop).
3. Each is started again (restart) with --restore STORE:ID and waited for until it
   answers out of band, holding: sockets bound, the snapshot's state taken.
   One that refused exits with its one line, which is raised.
4. Each is resumed, one after another: it replays the messages in flight
   to it at the cut, once, then serves.  All listen before any replays, so
   no message a replay sends (a credit) finds a peer not yet there.

The launcher is the experiment's Processes, or the CLI's RunningTopology
(running.py), for a topology an experiment left up.  Snapshots must not be
taken meanwhile: a restored process refuses every ID the store reserved
before the rollback, so a run in flight across one finishes incomplete.
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Sequence

from beaver.traffic.oob import protocol as oob
from beaver.control.config import ProcessConfig
from beaver.traffic.runtime import restore


class RollbackError(RuntimeError):
    """A process did not come back from the snapshot."""


class Launcher(Protocol):
    def stop(self, names: Sequence[str]) -> None:
        """Stops them (SIGTERM, then SIGKILL) and waits until they are gone."""

    def restart(self, name: str, extra: Sequence[str]) -> None:
        """Starts name's process again: its usual arguments, then extra."""

    def failure(self, name: str) -> str | None:
        """Why name's process exited (its last lines), or None while it runs."""


@dataclass
class Resumed:
    process: str
    replayed: dict[str, int]     # per peer: messages delivered again
    replay_ms: float
    state: Any = None            # its local state once replayed, if asked for


@dataclass
class RolledBack:
    number: int
    outcome: str                 # the snapshot's verdict
    forced: bool
    stop_s: float                # stopping the in-group
    start_s: float               # starting it from the snapshot, until all hold
    resume_s: float              # resuming it: the replays, until all serve
    processes: dict[str, Resumed] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.stop_s + self.start_s + self.resume_s

    @property
    def replayed(self) -> int:
        return sum(sum(r.replayed.values()) for r in self.processes.values())


def check(store: Path, number: int, processes: Sequence[ProcessConfig],
          force: bool = False):
    """RestoreRefused unless snapshot `number` may roll back every process."""
    snapshots = restore.open_existing(store)
    try:
        record = snapshots.get(number)
    finally:
        snapshots.close()
    restore.refuse(record, number, store, [p.name for p in processes], force)
    return record


def roll_back(store: Path, number: int, processes: Sequence[ProcessConfig],
              launcher: Launcher, force: bool = False, with_state: bool = False,
              timeout: float = 30.0) -> RolledBack:
    record = check(store, number, processes, force)
    names = [p.name for p in processes]
    began = time.monotonic()
    launcher.stop(names)
    stopped = time.monotonic()
    extra = ["--restore", f"{Path(store).resolve()}:{number}"] + (["--force"] if force else [])
    for name in names:
        launcher.restart(name, extra)
    deadline = time.monotonic() + timeout
    for process in processes:
        _wait_holding(process, launcher, deadline)
    held = time.monotonic()
    rolled = RolledBack(number, record.verdict.outcome.value, force, stopped - began,
                        held - stopped, 0.0)
    for process in processes:
        answer = _ask(process, {"op": "resume", **({"state": True} if with_state else {})})
        rolled.processes[process.name] = Resumed(process.name, answer["replayed"],
                                                 answer["replay_ms"], answer.get("state"))
    rolled.resume_s = time.monotonic() - held
    return rolled


def _wait_holding(process: ProcessConfig, launcher: Launcher, deadline: float):
    while True:
        if (why := launcher.failure(process.name)) is not None:
            raise RollbackError(f"{process.name} did not restart: {why}")
        try:
            restored = _ask(process, {"op": "status"}, 1.0).get("restored")
        except (OSError, oob.ProtocolError):
            restored = None
        if restored is not None:
            return
        if time.monotonic() > deadline:
            raise RollbackError(f"{process.name} did not answer from the snapshot in time")
        time.sleep(0.02)


def _ask(process: ProcessConfig, message: dict, timeout: float = 10.0) -> dict:
    with socket.create_connection((process.host, process.port), timeout=timeout) as s:
        return oob.request(s, {"v": oob.VERSION, **message})
