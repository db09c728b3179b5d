"""Figure 10: sustained snapshot frequency against |G|, one at a time (k=1),
with parallelism (k snapshots in flight), and the blocking strawman.

Each |G| is a fresh network whose SLBs are real BMv2 switches driven over
P4Runtime; a snapshot finishes when every SLB acknowledged it (the
gateways' share of the protocol; in-group reports are not collected, so the
figure measures what the gateways sustain).  Rate = snapshots finished /
time of the series.
"""
from __future__ import annotations

from beaver.control.engine import RunSettings
from beaver.control.record import Mode

from ..spec import Service, Spec
from .phase import snapshot_phase
from .results import Results

DESCRIPTION = "Fig. 10: sustained snapshot frequency vs |G|, k=1, parallel, blocking"

SERIES = (("one at a time", Mode.OGM, 1), ("parallel", Mode.OGM, None),
          ("blocking", Mode.BLOCKING, 1))


def add_arguments(p):
    p.add_argument("--slbs", default="1,2,4,8", help="|G| values (default 1,2,4,8)")
    p.add_argument("--count", type=int, default=1000, help="snapshots per series (default 1000)")
    p.add_argument("--inflight", type=int, default=64,
                   help="k for the parallel series (default 64, the SLB ring's limit)")


def run(args, results: Results) -> list[dict]:
    rows = []
    for slbs in [int(g) for g in args.slbs.split(",")]:
        spec = Spec(slbs=slbs, services=(Service("kv", "kv", 1, 7000),), outgroup=())
        for label, mode, inflight in SERIES:
            settings = RunSettings(mode, count=args.count, inflight=inflight or args.inflight)
            phase = snapshot_phase(results, f"g{slbs}-{label.replace(' ', '-')}", spec,
                                   settings, reports=False, warmup=0, judge=False)
            rows.append({"slbs": slbs, "series": label, "inflight": settings.inflight,
                         "finished": phase.summary.finished,
                         "accepted": phase.tally["accepted"],
                         "incomplete": phase.tally["incomplete"],
                         "seconds": round(phase.summary.elapsed_s, 3),
                         "snapshots_per_s": round(phase.summary.rate, 1)})
    for row in rows:
        base = next(r for r in rows if r["slbs"] == row["slbs"] and r["series"] == "one at a time")
        row["vs_one_at_a_time"] = round(row["snapshots_per_s"] / base["snapshots_per_s"], 2)
    results.write_csv(rows)
    plot(results, rows)
    return rows


def plot(results: Results, rows: list[dict]):
    fig, ax = results.figure()
    for label, _, _ in SERIES:
        series = [r for r in rows if r["series"] == label]
        ax.plot([r["slbs"] for r in series], [r["snapshots_per_s"] for r in series],
                marker="o", label=label)
    ax.set_xlabel("|G| (SLBs)")
    ax.set_ylabel("sustained snapshots per second")
    ax.set_xscale("log", base=2)
    ax.set_title("Figure 10: snapshot frequency on BMv2")
    ax.legend()
    results.save_figure(fig)
