"""Where a run's processes execute, on two cores:
- "shared" lets the kernel put every process anywhere (the controller
  takes its CPU from the SLBs, the services and the clients);
- "pinned" models a deployment where the controller has a machine of its
  own: this process (the controller, every thread: engine, receive, probe)
  on one core, every process it started (the SLBs' BMv2, the Mininet
  hosts' in-group processes, the clients, iperf3) on the other;
- "switches" models one where the SLBs are switches too, as the paper's
  Tofino: the controller and the SLBs' BMv2 on one core, the in-group
  processes and the clients on the other, so that what the hosts pay for
  Beaver is measured apart from what BMv2 pays in software for a pipeline a
  hardware switch runs at line rate.

    cores.apply("pinned")     # after starting processes, before measuring

Threads and children inherit their creator's affinity, so apply it again
after starting more processes: it sets every thread of every descendant.
"""
from __future__ import annotations

import os
from pathlib import Path

CHOICES = ("shared", "pinned", "switches")
CONTROLLER_CPU = 1
TRAFFIC_CPU = 0
SWITCH_COMMAND = "simple_switch"   # how BMv2's command name begins (/proc/PID/comm)


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


def is_switch(pid: int) -> bool:
    """Whether pid runs BMv2 (False once it ended)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().startswith(SWITCH_COMMAND)
    except OSError:
        return False


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
        raise ValueError(f"--cores {choice} needs 2 cores; this machine has {count}")
    placed = {"controller": pin(controller, {CONTROLLER_CPU}), "traffic": 0}
    if choice == "switches":
        placed["switches"] = 0
    for pid in descendants(controller):
        side = "switches" if choice == "switches" and is_switch(pid) else "traffic"
        placed[side] += pin(pid, {CONTROLLER_CPU if side == "switches" else TRAFFIC_CPU})
    return placed


def apart(choice: str) -> tuple[str, ...]:
    """The parties on a core the traffic's processes do not use."""
    return {"pinned": ("controller",), "switches": ("controller", "slb")}.get(choice, ())


def describe(choice: str) -> str:
    if choice == "pinned":
        return (f"pinned: controller on CPU {CONTROLLER_CPU}; SLBs, in-group, clients "
                f"on CPU {TRAFFIC_CPU}")
    if choice == "switches":
        return (f"switches: controller and SLBs on CPU {CONTROLLER_CPU}; in-group, clients "
                f"on CPU {TRAFFIC_CPU}")
    return "shared: every process on any core"
