"""The in-group processes of a running topology, as `beaver snapshot
restore` finds them.

Whenever an experiment starts an in-group process it writes the process
table, processes.json beside the network's beaver.toml: for each process
the pid of its Mininet host's shell (whose namespaces it runs in), its own
pid, its command line and its incarnation, which names its log and output
(a restart never overwrites what an earlier one wrote).  RunningTopology
reads the table to stop those processes and start them again in the same
namespaces (mnexec), as rollback.py's launcher.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

TABLE = "processes.json"


@dataclass
class Entry:
    host_pid: int            # the Mininet host's shell
    pid: int
    command: list[str]       # without --log, which each incarnation names
    incarnation: int         # 0 for the first start, then one more per restart


def paths(logs: Path, out: Path, name: str, incarnation: int) -> tuple[Path, Path, Path]:
    """Where incarnation k of name writes its event log, summary and errors."""
    stem = name if incarnation == 0 else f"{name}.{incarnation}"
    return logs / f"{stem}.jsonl", out / f"{stem}.json", out / f"{stem}.err"


def write_table(run_dir: Path, entries: dict[str, Entry]):
    path = Path(run_dir) / TABLE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({name: asdict(e) for name, e in entries.items()},
                                    indent=1))
    temporary.replace(path)   # whole or not at all: a reader never sees half


class TableError(RuntimeError):
    """No process table, or one that names processes that are not there."""


class RunningTopology:
    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        path = self.run_dir / TABLE
        try:
            table = json.loads(path.read_text())
            self.entries = {name: Entry(**entry) for name, entry in table.items()}
        except FileNotFoundError:
            raise TableError(f"no process table at {path}: is a topology running there "
                             "(beaver experiment run ... --hold)?") from None
        except (json.JSONDecodeError, TypeError) as e:
            raise TableError(f"{path}: not a process table: {e}") from None
        self._started: dict[str, subprocess.Popen] = {}

    def stop(self, names: Sequence[str], timeout: float = 10.0):
        pids = {name: self.entries[name].pid for name in names if self._is_ours(name)}
        for pid in pids.values():
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(map(_alive, pids.values())) and time.monotonic() < deadline:
            time.sleep(0.05)
        for pid in pids.values():
            _signal(pid, signal.SIGKILL)
            _reap(pid)
        for name in names:
            self._started.pop(name, None)

    def _is_ours(self, name: str) -> bool:
        """Whether the table's pid still runs name's command (pids are reused)."""
        command = self.entries[name].command
        if command[:2] == ["nice", "-n"]:   # nice runs the rest in its own place
            command = command[3:]
        try:
            cmdline = Path(f"/proc/{self.entries[name].pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        return [part.decode(errors="replace") for part in cmdline[:len(command)]] == command

    def restart(self, name: str, extra: Sequence[str]):
        entry = self.entries[name]
        entry.incarnation += 1
        log, out, err = paths(self.run_dir / "logs", self.run_dir / "out", name,
                              entry.incarnation)
        with open(out, "w") as stdout, open(err, "w") as stderr:
            process = subprocess.Popen(
                ["mnexec", "-da", str(entry.host_pid), *entry.command, *extra,
                 "--log", str(log)], stdout=stdout, stderr=stderr)
        entry.pid = process.pid
        self._started[name] = process
        write_table(self.run_dir, self.entries)

    def failure(self, name: str) -> str | None:
        process = self._started.get(name)
        if process is None or process.poll() is None:
            return None
        _, _, err = paths(self.run_dir / "logs", self.run_dir / "out", name,
                          self.entries[name].incarnation)
        lines = err.read_text(errors="replace").strip().splitlines()
        return " | ".join(lines[-3:]) or f"exit status {process.returncode}"


def _alive(pid: int) -> bool:
    """Running (a zombie has let go of its sockets: it counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _reap(pid: int):
    """Waits for pid if it is this process's child (else its parent will)."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _signal(pid: int, sig: int):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
