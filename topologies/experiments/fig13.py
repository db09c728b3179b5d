"""Figure 13: the switch window.  For every snapshot of a run at each |G|:
under immediate initiation the coarse window t1 - t0 against the spread of
the SLBs' switch times on their own clocks; under timed initiation that
spread against the clock bounds (traffic/analysis/windows.py).  CDFs and a
time series per ID, as the paper plots them.  No in-group reports are
collected: what is measured is the SLBs' switching alone."""
from __future__ import annotations

from beaver.control.engine import rules
from beaver.control.engine.engine import IMMEDIATE, TIMED, RunSettings
from beaver.control.engine.record import Mode
from beaver.topologies.experiments import fig12
from beaver.topologies.experiments.clean import spec
from beaver.topologies.experiments.common.phase import snapshot_phase
from beaver.topologies.experiments.common.results import Results
from beaver.traffic.analysis.windows import Window, window

INITIATIONS = (IMMEDIATE, TIMED)


def add_arguments(p):
    p.add_argument("--slbs", default="2,4", help="|G| values, comma-separated (default 2,4)")
    p.add_argument("--count", type=int, default=200, help="snapshots per run (default 200)")
    p.add_argument("--rate", type=float, default=50.0, help="snapshots per second (default 50)")
    p.add_argument("--tau-us", type=int, default=None,
                   help="tau for the verdicts (default: half of tau_min, measured first)")


def run(args, results: Results) -> list[dict]:
    tau = fig12.tau_or_measured(results, args.tau_us)
    rows, summary, series = [], [], {}
    for slbs in [int(g) for g in args.slbs.split(",")]:
        for initiation in INITIATIONS:
            label = f"g{slbs}-{initiation}"
            settings = RunSettings(Mode.OGM, rules.FINE, tau, count=args.count, rate=args.rate,
                                   inflight=4, initiation=initiation)
            phase = snapshot_phase(results, label, spec(slbs, ingroup=4, outgroup=4), settings,
                                   reports=False, judge=False)
            windows = [w for w in map(window, phase.records) if w is not None]
            series[label] = windows
            rows += [{"slbs": slbs, "initiation": initiation, **vars(w)} for w in windows]
            summary.append(summarize(slbs, initiation, windows, len(phase.records)))
    results.write_csv(rows)
    plot(results, series)
    return summary


def percentile(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1) if ordered else None


def summarize(slbs: int, initiation: str, windows: list[Window], taken: int) -> dict:
    spreads = [w.spread_us for w in windows]
    row = {"slbs": slbs, "initiation": initiation, "taken": taken, "measured": len(windows),
           "spread_p50_us": percentile(spreads, 0.5), "spread_p99_us": percentile(spreads, 0.99),
           "clock_bound_p50_us": percentile([w.clock_bound_us for w in windows], 0.5)}
    if initiation == IMMEDIATE:
        row.update(window_p50_us=percentile([w.window_us for w in windows], 0.5),
                   window_p99_us=percentile([w.window_us for w in windows], 0.99))
    else:
        row.update(late_p50_us=percentile([w.late_us for w in windows], 0.5),
                   within_clock_bound=sum(w.spread_low_us == 0 for w in windows))
    return row


def plot(results: Results, series: dict[str, list[Window]]):
    fig, axes = results.figure(2)
    cdf, over_time = axes
    for label, windows in series.items():
        measured = ({"t1 - t0": [w.window_us for w in windows]} if label.endswith(IMMEDIATE)
                    else {"clock bound": [w.clock_bound_us for w in windows]})
        measured["switch spread"] = [w.spread_us for w in windows]
        for what, values in measured.items():
            ordered = sorted(values)
            cdf.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))],
                     label=f"{label}: {what}")
        over_time.plot([w.number - windows[0].number for w in windows],
                       [w.spread_us for w in windows], ".", markersize=3, label=label)
    cdf.set_xscale("symlog", linthresh=10)
    cdf.set_xlabel("microseconds")
    cdf.set_ylabel("CDF")
    cdf.legend(fontsize=6)
    over_time.set_yscale("symlog", linthresh=10)
    over_time.set_xlabel("snapshot (from the run's first)")
    over_time.set_ylabel("switch spread (us)")
    over_time.legend(fontsize=6)
    fig.suptitle("Figure 13: the SLBs' switch window")
    results.save_figure(fig)
