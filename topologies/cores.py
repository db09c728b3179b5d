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

    # after starting processes, before measuring:
    cores.apply("switches", switches=run.parties()["slb"])

Threads and children inherit their creator's affinity, so apply it again
after starting more processes: it sets every thread of every descendant.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

CHOICES = ("shared", "pinned", "switches")
APART_CPU = 1     # the controller's, and with "switches" the SLBs'
TRAFFIC_CPU = 0   # the in-group's and the clients' (and with "pinned" the SLBs')


class PlacementError(ValueError):
    """A placement this machine or run cannot make."""


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


def apply(choice: str, controller: int | None = None,
          switches: Iterable[int] = ()) -> dict[str, int]:
    """Places the controller (default: this process) and its descendants,
    among them the switches (the SLBs' BMv2 pids: with "switches", they and
    what they started go beside the controller); how many threads went on
    each side ("shared" moves nothing: the kernel's choice, as every run
    before --cores)."""
    if choice not in CHOICES:
        raise PlacementError(f"unknown --cores {choice!r}: one of {', '.join(CHOICES)}")
    controller = os.getpid() if controller is None else controller
    if choice == "shared":
        return {}
    count = os.cpu_count() or 1
    if max(APART_CPU, TRAFFIC_CPU) >= count:
        raise PlacementError(f"--cores {choice} needs 2 cores; this machine has {count}")
    beside = {controller}   # the processes that go on APART_CPU
    if choice == "switches":
        switches = [pid for pid in switches if Path(f"/proc/{pid}").exists()]
        if not switches:
            raise PlacementError("--cores switches: no SLB process runs on this machine to place")
        beside.update(switches, *(descendants(pid) for pid in switches))
    cpus = {"apart": {APART_CPU}, "traffic": {TRAFFIC_CPU}}
    placed = dict.fromkeys(cpus, 0)
    for pid in dict.fromkeys([controller, *beside, *descendants(controller)]):   # each once
        side = "apart" if pid in beside else "traffic"
        placed[side] += pin(pid, cpus[side])
    return placed


def apart(choice: str) -> tuple[str, ...]:
    """The parties on a core the traffic's processes do not use."""
    return {"pinned": ("controller",), "switches": ("controller", "slb")}.get(choice, ())


def describe(choice: str) -> str:
    if choice == "pinned":
        return (f"pinned: controller on CPU {APART_CPU}; SLBs, in-group, clients "
                f"on CPU {TRAFFIC_CPU}")
    if choice == "switches":
        return (f"switches: controller and SLBs on CPU {APART_CPU}; in-group, clients "
                f"on CPU {TRAFFIC_CPU}")
    return "shared: every process on any core"
