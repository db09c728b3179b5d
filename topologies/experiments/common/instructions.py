"""Which party's instructions per request account for a missed Fig. 14
goal: each party's rise over the baseline (marking off, no Beaver runtime,
no snapshot), from instructions the benchmarks counted under callgrind,
converted to a run's own request and snapshot rates.

The benchmarks write one JSON file (--out of each):

  "slb"         bench/slb_instructions.py: a BMv2 switch's instructions per
                VIP packet "without" and with "marking", and what snapshots
                at each rate add each second (their control messages come
                per batch, whatever the packet rate);
  "controller"  the same run: the controller's instructions per snapshot at
                each rate;
  "ingroup"     bench/runtime_instructions.py: the runtime's instructions
                per request, Beaver layer "off" and "beaver", for each
                --snapshot-every (and --reports): runs ingroup_run(0) (no
                snapshot) and ingroup_run(S, reports=True) (a snapshot every
                S requests, its report answered) are read.

A phase with snapshots at R per second and q requests per second then
costs, per request, above the baseline:

  slb         marking - without  +  slbs x added per second / q
  ingroup     (beaver - off at no snapshot)  +  processes x per snapshot x R / q,
              a snapshot's own cost being S x the rise of the run with one
              every S requests over the run without
  controller  per snapshot x R / q

    rises = instruction_rises(load(path), rate=50, requests_per_second=2800,
                              slbs=2, ingroup=4)
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

PARTIES = ("slb", "ingroup", "controller")


class InstructionsError(ValueError):
    """The instructions file lacks what a phase needs, or is not one."""


def ingroup_run(snapshot_every: int, reports: bool = False) -> str:
    """The key of one bench/runtime_instructions.py run in "ingroup"."""
    return f"every-{snapshot_every}" + ("-reports" if reports else "")


def load(path: Path) -> dict:
    try:
        counts = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise InstructionsError(f"{path}: not a readable JSON file of instruction counts: {e}")
    if not isinstance(counts, dict) or not all(isinstance(counts.get(p), dict) for p in PARTIES):
        raise InstructionsError(f"{path}: needs the keys {', '.join(PARTIES)}, written by "
                                "bench/slb_instructions.py --out and bench/runtime_instructions.py "
                                "--out")
    return counts


def _count(table: Mapping, *keys: str) -> float:
    value = table
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            raise InstructionsError(f"the instructions file has no {'/'.join(keys)}: "
                                    "rerun the benchmark for it")
        value = value[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InstructionsError(f"the instructions file's {'/'.join(keys)} is not a number")
    return float(value)


def ingroup_snapshot(counts: Mapping) -> float:
    """One in-group process's instructions per snapshot, its report answered:
    the run with a snapshot every S requests over the run with none, times S."""
    runs = counts["ingroup"]
    every = [int(k.split("-")[1]) for k in runs
             if k.endswith("-reports") and k.split("-")[1].isdigit() and k.split("-")[1] != "0"]
    if not every:
        raise InstructionsError("the instructions file has no in-group run with snapshots and "
                                "reports: run bench/runtime_instructions.py --reports "
                                "--snapshot-every S --out FILE")
    s = min(every)
    snapshot = ingroup_run(s, reports=True)
    none = ingroup_run(0)
    rise = ((_count(runs, snapshot, "beaver") - _count(runs, snapshot, "off"))
            - (_count(runs, none, "beaver") - _count(runs, none, "off")))
    return rise * s


def instruction_rises(counts: Mapping, rate: float | None, requests_per_second: float,
                      slbs: int, ingroup: int) -> dict[str, float]:
    """Instructions per request each party adds over the baseline in a phase
    with marking and, rate not None, snapshots at rate per second, at
    requests_per_second (all clients'), with `slbs` SLBs and `ingroup`
    in-group processes each reporting every snapshot."""
    if not requests_per_second > 0:
        raise InstructionsError("no requests were served: no cost per request")
    none = ingroup_run(0)
    rises = {
        "slb": _count(counts, "slb", "per_packet", "marking")
        - _count(counts, "slb", "per_packet", "without"),
        "ingroup": _count(counts, "ingroup", none, "beaver")
        - _count(counts, "ingroup", none, "off"),
        "controller": 0.0}
    if rate is not None:
        key = f"{rate:g}"
        snapshots_per_request = rate / requests_per_second
        rises["slb"] += slbs * _count(counts, "slb", "snapshot_per_second", key) \
            / requests_per_second
        rises["ingroup"] += ingroup * ingroup_snapshot(counts) * snapshots_per_request
        rises["controller"] += _count(counts, "controller", "per_snapshot", key) \
            * snapshots_per_request
    return rises


def attribution(rises: Mapping[str, float], apart: tuple[str, ...] = ()) -> str:
    """The clause a missed goal's verdict carries: the party on the
    traffic's cores whose instructions per request rose most, and every
    party's rise."""
    counted = {p: v for p, v in rises.items() if p not in apart}
    if not counted:
        return "instructions per request: every party is on a core of its own"
    party = max(counted, key=counted.get)
    every = ", ".join(f"{p} {v:+,.0f}" + (" (own core)" if p in apart else "")
                      for p, v in sorted(rises.items(), key=lambda item: -item[1]))
    return (f"largest instruction rise per request on the traffic's cores: {party} "
            f"{counted[party]:+,.0f} ({every})")
