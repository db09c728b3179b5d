"""What Fig. 14 over UDP and TCP share: where the processes run
(--cores), the snapshot rates (--rates: one phase each), the phases
and their goals, the program the SLBs run in each, and the controller's
settings for a snapshot phase.

    for round_no, kind in paired.rounds(phases(args.rates), args.rounds):
        with Run(..., pipeline=pipeline_of(kind)) as run:
        prepare_clocks(run, kind)     # before the traffic and its CPU meter start
        if (rate := rate_of(kind)) is not None:
            run.snapshots(snapshot_settings(rate, args))
"""
from __future__ import annotations

import argparse
from pathlib import Path

from beaver.control.engine import rules
from beaver.control.engine.engine import TIMED, RunSettings
from beaver.control.engine.record import Mode
from beaver.control.engine.window import MAX_SPAN

from beaver.topologies import cores
from beaver.topologies.experiments.common import instructions
from beaver.topologies.experiments.common.paired import BASELINE, Goal

SNAPSHOTS = "snapshots-"     # a phase f"snapshots-{rate:g}": snapshots at that rate
NEAR_ZERO_RATE = 50.0        # snapshots per second at most, to be judged as near-zero
# One batch of IDs per SLB this often, at any rate: 1 s, not 0.2 s, took
# 1,000/s from 0.674 to 0.736 and its p99 from 4.2x to 2.2x (docs/experiments.md).
BATCH_SECONDS = 1.0
DEFAULT_BATCH = round(BATCH_SECONDS * NEAR_ZERO_RATE)   # IDs a batch at 50/s


def numbers(kind: type, least: float):
    """An argument type: a comma-separated list of kind, each at least least."""
    def parse(text: str) -> list:
        try:
            values = [kind(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: not a comma-separated list of "
                                             f"{kind.__name__}") from None
        if not values or min(values) < least:
            raise argparse.ArgumentTypeError(f"{text!r}: each must be at least {least:g}")
        return values
    return parse


def add_arguments(p, rates: str = "50,1000"):
    p.add_argument("--cores", choices=cores.CHOICES, default="shared",
                   help="pinned: the controller on a core of its own, every other process "
                        "on the other, in every phase; switches: the controller and the SLBs "
                        "on one core, the in-group and the clients on the other; shared "
                        "(default): the kernel's choice")
    p.add_argument("--rates", type=numbers(float, 0.1), default=numbers(float, 0.1)(rates),
                   help=f"snapshots per second, one snapshots phase each (default {rates})")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                   help=f"IDs per control message at 50/s (default {DEFAULT_BATCH}: one "
                        f"INIT_BATCH and one READ_BATCH per SLB every {BATCH_SECONDS:g} s; "
                        "higher rates batch as often, with as many more IDs)")


def add_instructions(p):
    p.add_argument("--instructions", type=instruction_counts, metavar="JSON",
                   help="instruction counts the benchmarks wrote (bench/slb_instructions.py "
                        "and bench/runtime_instructions.py --out): a missed goal's verdict "
                        "then names the party whose instructions per request (iperf3: per "
                        "packet) rose most")


def instruction_counts(text: str) -> dict:
    """An argument type: the benchmarks' JSON of instruction counts."""
    try:
        return {**instructions.load(Path(text)), "path": text}
    except instructions.InstructionsError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def counted_by(args) -> str:
    """Where the instruction counts come from, for the summary (with
    --instructions)."""
    counts = args.instructions
    reports = counts["controller"].get("reports") is not False
    return (f"{counts['path']} (callgrind; BMv2 {counts['slb'].get('build', '?')}"
            + ("" if reports else "; the controller's without reports") + ")")


def attributor(args, slbs: int, ingroup: int, per: str = "request", note: str = ""):
    """With --instructions, what judge() asks of a missed goal: whose
    instructions per `per` account for it, at the phase's own request
    and snapshot rates and packets a request (common/instructions.py), the
    note appended; checked for every phase now, so a file that lacks a rate
    fails before the run, not after it."""
    counts = args.instructions
    if counts is None:
        return None

    def attribute(kind: str, requests_per_second: float, packets_per_request: float = 1.0) -> str:
        rate = rate_of(kind)
        rises = instructions.instruction_rises(counts, rate, requests_per_second, slbs, ingroup,
                                               batch_for(rate, args) if rate else 1,
                                               packets_per_request)
        clause = instructions.attribution(rises, cores.apart(args.cores), per)
        return f"{clause}; {note}" if note else clause

    try:
        instructions.check_batch(counts, args.batch)
        for kind in phases(args.rates)[1:]:
            attribute(kind, 1.0)
    except instructions.InstructionsError as e:
        raise SystemExit(f"--instructions {counts['path']}: {e}") from None
    return attribute


def prepare_clocks(run, kind: str):
    """Clock probes (each a packet through the switch's pipeline) only where
    snapshots are taken, and past their fast phase (a probe a millisecond
    per switch, for about 2 s) before the traffic starts: a deployment's
    controller probes all along, so a snapshot phase bears the steady
    probing (one every 0.1 s per switch), and a phase without snapshots,
    which needs no clock, none."""
    if rate_of(kind) is None:
        for gw in run.controller.slbs:
            gw.stop_probe()
    else:
        run.controller.settle_clocks()


def pipeline_of(kind: str) -> str:
    """The program every SLB runs in a phase (control/config.py PIPELINES):
    the plain SLB in the baseline and in fig14tcp's capacity phase, both
    without Beaver; Beaver's in every other."""
    return "plain" if kind in (BASELINE, "capacity") else "beaver"


def phase_name(rate: float) -> str:
    return f"{SNAPSHOTS}{rate:g}"


def phases(rates) -> tuple[str, ...]:
    return (BASELINE, "marking", *(phase_name(r) for r in rates))


def rate_of(kind: str) -> float | None:
    """The snapshot rate of a phase, None for one without snapshots."""
    return float(kind[len(SNAPSHOTS):]) if kind.startswith(SNAPSHOTS) else None


def goals(rates, p99: bool = True) -> dict[str, Goal]:
    """The paper's near-zero: marking and snapshots up to 50/s at 0.98
    throughput (p99 at most 1.1x, where p99 is measured); above, 0.95."""
    near = Goal(0.98, p99=1.1 if p99 else None)
    return {"marking": near,
            **{phase_name(r): near if r <= NEAR_ZERO_RATE else Goal(0.95) for r in rates}}


def batch_for(rate: float, args) -> int:
    """IDs per control message: --batch at 50/s, as often at any rate, but
    no more than four batches in flight may span (the SLBs' record ring)."""
    return min(max(args.batch, round(args.batch * rate / NEAR_ZERO_RATE)), MAX_SPAN // 4)


def snapshot_settings(rate: float, args) -> RunSettings:
    """OGM, fine rule, timed initiation, every report collected (unless the
    run says otherwise), for args.seconds."""
    batch = batch_for(rate, args)
    return RunSettings(Mode.OGM, rules.FINE, 1000, inflight=4 * batch, rate=rate,
                       count=max(1, int(rate * args.seconds)), batch=batch, initiation=TIMED)
