"""Distributed deadlock detection: two in-group lock managers (la, lb) hold
locks for out-group workflows; a cycle in a snapshot's wait-for graph is a
reported deadlock (traffic/analysis/deadlock.py), with Beaver, Lai-Yang and polling
(methods.py).

Ordinary workflows contend for L0 at la, then L1 at lb (some through an
out-group forwarder) and never deadlock; a deadlocking pair injects one
real deadlock per --period, lasting about --wait.  Scored per accepted
snapshot: real deadlocks found, phantom ones reported, and ones missed
that existed across all of the snapshot's cuts.  A phantom needs la's cut
later than lb's with a workflow's round between them, so Lai-Yang
initiates la late.
"""
from __future__ import annotations

from beaver.traffic.analysis.deadlock import (Judged, cut_us, cycles, episodes, judge, received_us,
                                     waits)

from beaver.topologies.processes import Workload
from beaver.topologies.spec import Plan, Service, Spec
from beaver.topologies.experiments.common import methods
from beaver.topologies.experiments.common.results import Results

PAIR = ("deadlock-a", "deadlock-b")


def add_arguments(p):
    methods.add_arguments(p)
    p.add_argument("--workflows", type=int, default=4, help="ordinary workflows (default 4)")
    p.add_argument("--period", type=float, default=1.0,
                   help="seconds between injected deadlocks (default 1)")
    p.add_argument("--wait", type=float, default=0.5,
                   help="seconds a deadlocked workflow waits before giving up (default 0.5)")


def spec(workflows: int) -> Spec:
    return Spec(slbs=2, services=(Service("la", "locks", 1, 7200),
                                  Service("lb", "locks", 1, 7300)),
                outgroup=("forwarder", *PAIR) + ("workflow",) * workflows,
                assignment="per-vip")


def run(args, results: Results) -> list[dict]:
    tau = methods.tau(args, results)
    network = spec(args.workflows)
    pair = [n for n, (role, _) in Plan.of(network).outgroup.items() if role in PAIR]
    timing = ("--period", str(args.period), "--wait", str(args.wait))
    workload = Workload(app_args=dict.fromkeys(PAIR, timing))
    summary, rows = [], []
    late = methods.processes_of(network, "la")
    for method, phase in methods.run_methods(args, results, network, tau, late,
                                             workload).items():
        trace = phase.truth.trace
        known = episodes([phase.summaries[n].get("episodes", []) for n in pair],
                         received_us(trace))
        total, judged = Judged(), {}
        for record in methods.accepted(phase):
            states = [r.local_state for r in record.reports.values()]
            reported = cycles(waits(states))
            judged[record.number] = one = judge(reported, known,
                                                cut_us(trace, record.snapshot_id))
            total.real += one.real
            total.phantom += one.phantom
            total.missed += one.missed
        for row in phase.rows:
            if (one := judged.get(row["number"])) is not None:
                row.update(real=one.real, phantom=one.phantom, missed=one.missed)
        rows += phase.rows
        summary.append({"method": method, "snapshots": len(judged),
                        "deadlocks_injected": len(known),
                        "deadlocks_existed": sum(e.existed for e in known),
                        "real_found": total.real, "phantom": total.phantom,
                        "missed": total.missed, **methods.checker_counts(phase)})
        results.progress(f"{method}: " + ", ".join(f"{k}={summary[-1][k]}" for k in
                                                   ("snapshots", "real_found", "phantom",
                                                    "missed")))
    results.write_csv(rows, "deadlock-snapshots")
    results.write_csv(summary)
    plot(results, summary)
    return summary


def plot(results: Results, summary: list[dict]):
    methods.plot_methods(results, summary, (
        ("real_found", "tab:green", "real deadlock found"),
        ("phantom", "tab:red", "phantom deadlock"),
        ("missed", "tab:orange", "deadlock missed")),
        "over accepted snapshots", "Deadlock detection from snapshots")
