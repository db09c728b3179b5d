"""Where a run's processes execute: on two cores, "shared" lets the kernel
put every process anywhere (the controller takes its CPU from the SLBs,
the services and the clients); "pinned" models a deployment, where the
controller has a machine of its own: this process (the controller, every
thread: engine, receive, probe) on one core, every process it started
(the SLBs' BMv2, the Mininet hosts' in-group processes, the clients, iperf3)
on the other.

    cores.apply("pinned")     # after starting processes, before measuring

Threads and children inherit their creator's affinity, so apply it again
after starting more processes: it sets every thread of every descendant.
"""
from __future__ import annotations

import os
from pathlib import Path

CHOICES = ("shared", "pinned")
CONTROLLER_CPU = 1
TRAFFIC_CPU = 0


def descendants(pid: int) -> list[int]:
    """Every living process started, directly or not, by pid."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue                    # it ended meanwhile
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], list(children.get(pid, ()))
    while todo:
        child = todo.pop()
        found.append(child)
        todo += children.get(child, ())
    return found


def pin(pid: int, cpus: set[int]) -> int:
    """Puts every thread of pid on cpus; how many threads it set (0: the
    process ended meanwhile)."""
    pinned = 0
    try:
        threads = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
    except OSError:
        return 0
    for tid in threads:
        try:
            os.sched_setaffinity(tid, cpus)
            pinned += 1
        except (ProcessLookupError, PermissionError):
            pass                        # a thread that ended, or one not ours to move
    return pinned


def apply(choice: str, controller: int | None = None) -> dict[str, int]:
    """Places the controller (default: this process) and its descendants;
    how many threads went on each side ("shared" moves nothing: the
    kernel's choice, as every run before --cores)."""
    if choice not in CHOICES:
        raise ValueError(f"unknown --cores {choice!r}: one of {', '.join(CHOICES)}")
    controller = os.getpid() if controller is None else controller
    if choice == "shared":
        return {}
    count = os.cpu_count() or 1
    if max(CONTROLLER_CPU, TRAFFIC_CPU) >= count:
        raise ValueError(f"--cores pinned needs 2 cores; this machine has {count}")
    traffic = sum(pin(pid, {TRAFFIC_CPU}) for pid in descendants(controller))
    return {"controller": pin(controller, {CONTROLLER_CPU}), "traffic": traffic}


def describe(choice: str) -> str:
    if choice == "pinned":
        return (f"pinned: controller on CPU {CONTROLLER_CPU}; SLBs, in-group, clients "
                f"on CPU {TRAFFIC_CPU}")
    return "shared: every process on any core"
