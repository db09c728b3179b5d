"""CPU time of the parties of a run, over a window: what each costs per
request is what a user on another machine can compare, where a throughput
ratio on two shared cores is not.

    meter = CpuMeter({"slb": [pid, pid], "ingroup": [pid, pid]})
    ...                                  # the workload runs
    seconds = meter.read()               # {"slb": 1.9, "ingroup": 3.2}

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


class CpuMeter:
    def __init__(self, groups: Mapping[str, Sequence[int]]):
        self.groups = {name: list(pids) for name, pids in groups.items()}
        self.start = {pid: cpu_seconds(pid) for pids in self.groups.values() for pid in pids}

    def read(self) -> dict[str, float]:
        """CPU seconds each group used since the meter was made."""
        return {name: sum(cpu_seconds(pid) - self.start[pid] for pid in pids)
                for name, pids in self.groups.items()}
