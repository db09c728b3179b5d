"""One Mininet run at a time on a machine.

A run's names (`bv*` hosts, links and bridges), its switches' ports and
its iptables rules are the machine's, and `beaver experiment cleanup`
removes every one of them: a second run, or a cleanup, would take the
first run's network down.  So `experiment run` and `experiment cleanup`
hold an exclusive lock (flock) on LOCK_PATH while they work, and the file
says who holds it.  A lock rather than per-run names: the names are short
(Linux allows 15 characters to an interface) and cleanup must find a
killed run's leftovers without knowing which run it was.

The kernel releases a flock when its holder exits, however it ends
(SIGKILL included), so a lock is never left behind.  The file is emptied
on release; words left by a killed holder mean nothing without the lock.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

LOCK_PATH = Path("/run/beaver/mininet.lock")


class LockError(RuntimeError):
    """The run lock cannot be taken."""


class Busy(LockError):
    """Another run holds the machine; the message names it."""


@contextmanager
def holding(command: str, path: Path | None = None) -> Iterator[None]:
    """Holds the machine's run lock while `command` (what the user typed) runs;
    Busy if another run holds it."""
    path = Path(path or LOCK_PATH)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)   # not inherited by what it starts
    except OSError as e:
        raise LockError(f"cannot make the machine's run lock {path}: {e.strerror} (Mininet "
                        "runs need root)") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode(errors="replace").strip()
            raise Busy(f"another Mininet run holds this machine: "
                       f"{holder or 'a run that is starting'}; it shares the bv* names, so "
                       "wait for it to end or stop it first") from None
        since = datetime.now().isoformat(sep=" ", timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} ({command}), since {since}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)   # releases the lock
