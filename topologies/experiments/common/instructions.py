"""Which party's instructions per request account for a missed Fig. 14
goal: each party's rise over the baseline (the plain SLB, no Beaver
runtime, no snapshot), from instructions the benchmarks counted under
callgrind, converted to a run's own request and snapshot rates.

The benchmarks write one JSON file (--out of each):

  "slb"         bench/slb_instructions.py: a BMv2 switch's instructions per
                VIP packet running the "plain" SLB (Fig. 14's baseline;
                files written before it was measured have only "without",
                Beaver's program with marking off, taken in its place), with
                "marking", and what snapshots at each rate add: their
                control packets' instructions a second ("control_per_second",
                per batch whatever the packet rate) and a "step" for each
                VIP packet that finds an ID due ("per_step");
  "controller"  the same run: the controller's instructions per snapshot at
                each rate;
  "ingroup"     bench/runtime_instructions.py: one replica's instructions
                per request, Beaver layer "off" and "beaver", each run with
                its settings: a snapshot every "snapshot_every" requests (0:
                none), with "reports" asked one a "batch" of IDs.

A phase with snapshots at R per second, q requests per second, p packets
through an SLB a request and IDs batched B a time then costs, per request,
above the baseline:

  slb         (marking - plain) x p
              +  slbs x (step x R (1 - exp(-q p / (slbs R))) + control per second) / q
  controller  per snapshot x R / q
  ingroup     beaver - off, of the run with reports a batch of B and a
              snapshot every S requests, S the nearest to what each of the
              in-group processes sees, q / (processes x R) (at least 1: a
              process that sees fewer requests than IDs takes a new ID with
              each); with marking alone, of the run without snapshots; 0
              where no Beaver process serves the requests (an iperf3 server)

A step is paid by each ID's interval that a packet at the SLB falls in:
with packets arriving at random at q p / slbs a second, R (1 - exp(-that /
R)) of them a second, about R when packets come faster than IDs (each ID
stepped to by a packet of its own), about the packet rate when slower
(a packet moves over several IDs in one step).  A UDP request is one
packet (p = 1); a TCP request is as many as its phase
measured (segments and ACKs: fig14tcp.py), and iperf3's "request" is a
packet (p = 1, q its packets per second).

    rises = instruction_rises(load(path), rate=50, requests_per_second=2800,
                              slbs=2, ingroup=4, batch=10)
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Mapping

PARTIES = ("slb", "ingroup", "controller")


class InstructionsError(ValueError):
    """The instructions file lacks what a phase needs, or is not one."""


def ingroup_run(snapshot_every: int, reports: bool = False, batch: int = 1) -> str:
    """The key of one bench/runtime_instructions.py run in "ingroup"."""
    return (f"every-{snapshot_every}" + ("-reports" if reports else "")
            + (f"-batch-{batch}" if batch > 1 else ""))


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


def check_batch(counts: Mapping, batch: int):
    """The SLB's and the controller's counts per snapshot hold only at the
    batch they were taken with (a batch's control messages are most of
    them).  batch: IDs a batch at 50/s; a file written before the key was
    taken at 10."""
    for party in ("slb", "controller"):
        taken = counts[party].get("batch", 10)
        if taken != batch:
            raise InstructionsError(f"its {party} counts were taken with --batch {taken!r}, "
                                    f"this run batches {batch}: rerun "
                                    f"bench/slb_instructions.py --batch {batch} --out FILE")


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


def slb_baseline(counts: Mapping) -> str:
    """The mode of the SLB's per-packet count a rise is taken over: "plain"
    (what Fig. 14's baseline runs), or in an older file "without"."""
    slb = counts.get("slb")
    per_packet = slb.get("per_packet") if isinstance(slb, Mapping) else None
    return "plain" if isinstance(per_packet, Mapping) and "plain" in per_packet else "without"


def ingroup_rise(counts: Mapping, snapshot_every: float | None,
                 batch: int) -> tuple[float, int]:
    """(beaver - off per request, the run's snapshot_every) of the in-group
    run nearest to a snapshot every `snapshot_every` requests with reports a
    batch of `batch` (None: the run without snapshots)."""
    runs = {key: run for key, run in counts["ingroup"].items() if isinstance(run, Mapping)}
    if snapshot_every is None:
        fitting = {k: r for k, r in runs.items() if r.get("snapshot_every") == 0}
        wanted = "a run without snapshots (--snapshot-every 0)"
    else:
        fitting = {k: r for k, r in runs.items() if r.get("reports") is True
                   and r.get("batch") == batch and isinstance(r.get("snapshot_every"), int)
                   and r["snapshot_every"] > 0}
        wanted = f"a run with --reports --batch {batch}"
    if not fitting:
        raise InstructionsError(f"the instructions file has no in-group {wanted}: run "
                                "bench/runtime_instructions.py with it and --out FILE")
    target = max(1.0, snapshot_every or 0.0)
    key = min(fitting, key=lambda k: abs(math.log(max(1, fitting[k]["snapshot_every"]) / target)))
    rise = _count(runs, key, "beaver") - _count(runs, key, "off")
    return rise, fitting[key]["snapshot_every"]


def instruction_rises(counts: Mapping, rate: float | None, requests_per_second: float,
                      slbs: int, ingroup: int, batch: int = 1,
                      packets_per_request: float = 1.0) -> dict[str, float]:
    """Instructions per request each party adds over the baseline in a phase
    with marking and, rate not None, snapshots at rate per second, batch IDs
    a time, at requests_per_second (all clients'), each request
    packets_per_request packets through an SLB, with `slbs` SLBs and
    `ingroup` in-group processes serving the requests (0: none runs Beaver)."""
    if not requests_per_second > 0:
        raise InstructionsError("no requests were served: no cost per request")
    marking = (_count(counts, "slb", "per_packet", "marking")
               - _count(counts, "slb", "per_packet", slb_baseline(counts)))
    rises = {"slb": marking * packets_per_request, "controller": 0.0, "ingroup": 0.0}
    if rate is None:
        if ingroup:
            rises["ingroup"] = ingroup_rise(counts, None, batch)[0]
        return rises
    key = f"{rate:g}"
    packets_per_slb = requests_per_second * packets_per_request / slbs
    steps_per_second = rate * -math.expm1(-packets_per_slb / rate)
    rises["slb"] += slbs * (_count(counts, "slb", "per_step", key) * steps_per_second
                            + _count(counts, "slb", "control_per_second", key)) \
        / requests_per_second
    rises["controller"] += _count(counts, "controller", "per_snapshot", key) \
        * rate / requests_per_second
    if ingroup:
        rises["ingroup"] = ingroup_rise(counts, requests_per_second / (ingroup * rate),
                                        batch)[0]
    return rises


def attribution(rises: Mapping[str, float], apart: tuple[str, ...] = (),
                per: str = "request") -> str:
    """The clause a missed goal's verdict carries: the party on the
    traffic's cores whose instructions per `per` rose most, and every
    party's rise."""
    counted = {p: v for p, v in rises.items() if p not in apart}
    if not counted:
        return f"instructions per {per}: every party is off the traffic's core"
    party = max(counted, key=counted.get)
    every = ", ".join(f"{p} {v:+,.0f}" + (" (off the traffic's core)" if p in apart else "")
                      for p, v in sorted(rises.items(), key=lambda item: -item[1]))
    return (f"largest instruction rise per {per} on the traffic's cores: {party} "
            f"{counted[party]:+,.0f} ({every})")
