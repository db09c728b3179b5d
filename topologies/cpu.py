"""CPU time of the parties of a run, over a window: what each costs per
request is what a user on another machine can compare, where a throughput
ratio on two shared cores is not.

    meter = CpuMeter({"slb": [pid, pid], "ingroup": [pid, pid]})
    ...                                  # the workload runs
    seconds = meter.read()               # {"slb": 1.9, "ingroup": 3.2}
    meter.stolen()                       # 0.004: the hypervisor took 0.4 % of the CPUs

In a virtual machine the hypervisor may run other guests on our CPUs
(steal time): a round it disturbed serves fewer requests for reasons of
its own, which the steal share tells.

Read while every process measured still runs (before stopping them).
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (all its threads) so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def machine_jiffies() -> tuple[int, int]:
    """(steal, all) clock ticks of every CPU so far, from /proc/stat."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:9]]   # user .. steal
    return ticks[7], sum(ticks)


class CpuMeter:
    def __init__(self, groups: Mapping[str, Sequence[int]]):
        self.groups = {name: list(pids) for name, pids in groups.items()}
        self.start = {pid: cpu_seconds(pid) for pids in self.groups.values() for pid in pids}
        self.start_jiffies = machine_jiffies()

    def read(self) -> dict[str, float]:
        """CPU seconds each group used since the meter was made."""
        return {name: sum(cpu_seconds(pid) - self.start[pid] for pid in pids)
                for name, pids in self.groups.items()}

    def stolen(self) -> float:
        """The share of every CPU's time since the meter was made that the
        hypervisor gave to others (0 outside a virtual machine)."""
        (steal, total), (steal0, total0) = machine_jiffies(), self.start_jiffies
        return (steal - steal0) / max(1, total - total0)
