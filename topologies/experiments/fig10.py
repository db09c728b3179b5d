"""Figure 10: sustained snapshot frequency against |G|: one at a time
(k=1), with parallelism (k snapshots in flight, one control message each),
batched (timed initiation, one schedule per SLB for many IDs, judged by the
schedules, as many in flight as the SLBs' ring allows), and the blocking
strawman.

Each |G| is a fresh network whose SLBs are real BMv2 switches driven over
P4Runtime; a snapshot finishes when every SLB acknowledged it (the
slbs' share of the protocol, as in the paper's figure).  The batched
series is run a second time with every in-group report collected, the
cost of the whole snapshot.  Rate = snapshots finished / time of the series,
and the rate held: between the commits that stored the first and the last
tenth of them (RunSummary.steady_rate: no start-up, no drain; give a count
that lasts 10 s or more); every snapshot is judged by its rule and stored.
Beside the rates, how far behind the batched runs fell (back-pressure: the
window full) and the controller's CPU per snapshot.
"""
from __future__ import annotations

from beaver.control.engine.engine import TIMED, RunSettings
from beaver.control.engine.record import Mode
from beaver.control.engine.window import MAX_SPAN
from beaver.p4src.wire import SCHEDULE_MAX

from beaver.topologies.bmv2 import bmv2_build
from beaver.topologies.spec import Service, Spec
from beaver.topologies.experiments.common.phase import snapshot_phase
from beaver.topologies.experiments.common.results import Results

ONE, PARALLEL, BATCHED, REPORTED, BLOCKING = ("one at a time", "parallel", "batched",
                                              "batched, reports", "blocking")
SERIES = (ONE, PARALLEL, BATCHED, REPORTED, BLOCKING)
BATCH = 255   # IDs per schedule: 32 schedules fit the window (the ring's 8,191)


def add_arguments(p):
    p.add_argument("--slbs", default="1,2,4,8", help="|G| values (default 1,2,4,8)")
    p.add_argument("--count", type=int, default=1000, help="snapshots per series (default 1000)")
    p.add_argument("--batched-count", type=int, default=20000,
                   help="snapshots per batched series (default 20000)")
    p.add_argument("--inflight", type=int, default=64,
                   help="k for the parallel series (default 64)")
    p.add_argument("--series", default=",".join(map(_slug, SERIES)),
                   help="the series to run, comma-separated (default all: "
                        f"{', '.join(map(_slug, SERIES))})")
    p.add_argument("--batch", type=int, default=BATCH,
                   help=f"IDs per schedule when batched (default {BATCH}, at most "
                        f"{SCHEDULE_MAX})")


def _slug(label: str) -> str:
    """A series' name on the command line and in its phase's folder."""
    return label.replace(" ", "-").replace(",", "")


def _series(args) -> list[str]:
    by_slug = {_slug(label): label for label in SERIES}
    chosen = [name.strip() for name in args.series.split(",")]
    if unknown := [name for name in chosen if name not in by_slug]:
        raise SystemExit(f"fig10: no series {unknown[0]!r}; the series: {', '.join(by_slug)}")
    return [by_slug[name] for name in chosen]


def settings_for(series: str, args) -> RunSettings:
    if series == ONE:
        return RunSettings(Mode.OGM, count=args.count)
    if series == PARALLEL:
        return RunSettings(Mode.OGM, count=args.count, inflight=args.inflight)
    if series == BLOCKING:
        return RunSettings(Mode.BLOCKING, count=args.count)
    return RunSettings(Mode.OGM, count=args.batched_count, inflight=MAX_SPAN,
                       batch=args.batch, initiation=TIMED)


def run(args, results: Results) -> list[dict]:
    rows = []
    for slbs in [int(g) for g in args.slbs.split(",")]:
        spec = Spec(slbs=slbs, services=(Service("kv", "kv", 1, 7000),), outgroup=())
        for label in _series(args):
            settings = settings_for(label, args)
            phase = snapshot_phase(results, f"g{slbs}-{_slug(label)}",
                                   spec, settings, reports=label == REPORTED, warmup=0,
                                   judge=False, keep=False)
            steady = phase.summary.steady_rate()
            finished = phase.summary.finished
            rows.append({"slbs": slbs, "series": label, "inflight": settings.inflight,
                         "batch": settings.batch, "finished": finished,
                         "accepted": phase.tally["accepted"],
                         "incomplete": phase.tally["incomplete"],
                         "seconds": round(phase.summary.elapsed_s, 3),
                         "snapshots_per_s": round(phase.summary.rate, 1),
                         "steady_per_s": round(steady, 1) if steady else None,
                         "behind_ms": round(phase.summary.behind_us / 1000, 1),
                         "controller_cpu_us": round(phase.summary.cpu_s / max(finished, 1)
                                                    * 1e6, 1),
                         "latency_p50_ms": phase.tally["latency_p50_ms"],
                         "latency_p99_ms": phase.tally["latency_p99_ms"],
                         "lead_ms": phase.tally["lead_ms"],
                         "by_records": phase.summary.by_records,
                         "bmv2": bmv2_build()})
            r = rows[-1]
            results.progress(f"g{slbs} {label}: held {r['steady_per_s']}/s (the first and last "
                             f"tenth left out), {r['snapshots_per_s']}/s over "
                             f"{r['seconds']} s, controller {r['controller_cpu_us']} us a "
                             f"snapshot, lead {r['lead_ms']} ms, latency p50 "
                             f"{r['latency_p50_ms']} p99 {r['latency_p99_ms']} ms")
    for row in rows:
        base = next((r for r in rows if r["slbs"] == row["slbs"] and r["series"] == ONE), None)
        if base is not None:
            row["vs_one_at_a_time"] = round(row["snapshots_per_s"] / base["snapshots_per_s"], 2)
    results.write_csv(rows)
    plot(results, rows)
    return rows


def plot(results: Results, rows: list[dict]):
    fig, ax = results.figure()
    for label in SERIES:
        series = [r for r in rows if r["series"] == label]
        ax.plot([r["slbs"] for r in series], [r["snapshots_per_s"] for r in series],
                marker="o", label=label)
    ax.set_xlabel("|G| (SLBs)")
    ax.set_ylabel("sustained snapshots per second")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_title(f"Figure 10: snapshot frequency on BMv2 ({'performance' if 'performance' in rows[0]['bmv2'] else 'default'} build)")
    ax.legend()
    results.save_figure(fig)
