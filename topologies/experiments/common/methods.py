"""The three ways the use-case experiments take snapshots, on one network each:

  beaver    OGM, fine rule at tau, timed initiation; the runtime in Beaver mode
  lai-yang  no slbs: processes initiated out of band, marks ignored
  polling   each process snapshots on its own timer (no channel state)

--lag-ms makes some processes learn of each Lai-Yang snapshot late,
as out-of-band initiation reaching many processes is in a larger deployment;
Beaver's initiation goes to the |G| slbs only, which switch at one
moment (timed initiation), so it has no such lag to model.  The late ones
are a whole service with no channel to the others: a snapshot's COUNT
messages would carry it to a late process's in-group peers at once.
"""
from __future__ import annotations

import argparse
from dataclasses import replace

from beaver.control.engine import rules
from beaver.control.engine.engine import TIMED, RunSettings
from beaver.control.engine.record import Mode, Outcome, SnapshotRecord

from beaver.topologies.processes import Workload
from beaver.topologies.spec import Plan, Spec
from beaver.topologies.experiments import fig12
from beaver.topologies.experiments.common.phase import PhaseResult, snapshot_phase
from beaver.topologies.experiments.common.results import Results

METHODS = ("beaver", "lai-yang", "polling")

# The checker's counts each summary row carries, as Table 3's do.
CHECKER_COUNTS = ("accepted", "rejected", "consistent", "inconsistent", "unjudged",
                  "channel_errors", "false_accepts", "short_logs", "shortest_chain_us",
                  "chains_under_tau")


def add_arguments(p, count: int = 30, rate: float = 5.0, lag_ms: float = 10.0):
    p.add_argument("--count", type=int, default=count,
                   help=f"snapshots per method (default {count})")
    p.add_argument("--rate", type=float, default=rate,
                   help=f"snapshots per second (default {rate:g})")
    p.add_argument("--lag-ms", type=float, default=lag_ms,
                   help=f"Lai-Yang: initiation lag of some processes (default {lag_ms:g})")
    p.add_argument("--tau-us", type=int, default=None,
                   help="Beaver's tau (default: half of tau_min, measured first)")
    p.add_argument("--methods", type=some_of(METHODS), default=list(METHODS),
                   help=f"which of {','.join(METHODS)} to run (default all)")


def some_of(allowed: tuple[str, ...]):
    """An argument type: a comma-separated list of some of allowed."""
    def parse(text: str) -> list[str]:
        chosen = text.split(",")
        if unknown := set(chosen) - set(allowed):
            raise argparse.ArgumentTypeError(f"{', '.join(sorted(unknown))}: "
                                             f"not one of {', '.join(allowed)}")
        return chosen
    return parse


def processes_of(spec: Spec, service: str) -> list[str]:
    return [n for n, (s, *_) in Plan.of(spec).ingroup.items() if s.name == service]


def settings(method: str, args, tau: int, workload: Workload,
             late: list[str]) -> tuple[Workload, RunSettings]:
    """late: the processes Lai-Yang initiates --lag-ms late."""
    common = dict(count=args.count, rate=args.rate)
    if method == "beaver":
        return workload, RunSettings(Mode.OGM, rules.FINE, tau, retake=3, initiation=TIMED,
                                     **common)
    if method == "lai-yang":
        lag = int(args.lag_ms * 1000)
        return (replace(workload, runtime_mode="lai-yang"),
                RunSettings(Mode.LAI_YANG, delays_us=dict.fromkeys(late, lag) if lag else {},
                            **common))
    if method == "polling":
        return (replace(workload, runtime_mode="polling", poll_interval=1 / args.rate),
                RunSettings(Mode.POLLING, **common))
    raise ValueError(f"unknown method {method!r}: one of {', '.join(METHODS)}")


def run_methods(args, results: Results, spec: Spec, tau: int, late: list[str],
                workload: Workload = Workload(), label: str = "") -> dict[str, PhaseResult]:
    """One phase per method asked for (--methods), on a fresh network each."""
    phases = {}
    for method in args.methods:
        method_workload, run_settings = settings(method, args, tau, workload, late)
        name = f"{method}-{label}" if label else method
        phases[method] = snapshot_phase(results, name, spec, run_settings, method_workload,
                                        method=method, **({"system": label} if label else {}))
    return phases


def tau(args, results: Results) -> int:
    """Beaver's tau: --tau-us, else tau_min measured (only if Beaver runs)."""
    return fig12.tau_or_measured(results, args.tau_us) if "beaver" in args.methods else 0


def accepted(phase: PhaseResult) -> list[SnapshotRecord]:
    """The snapshots a user of this method would act on."""
    return [r for r in phase.records if r.verdict.outcome is Outcome.ACCEPTED]


def checker_counts(phase: PhaseResult) -> dict:
    return {k: phase.tally.get(k) for k in CHECKER_COUNTS}


def plot_methods(results: Results, summary: list[dict], bars: tuple[tuple[str, str, str], ...],
                 ylabel: str, title: str):
    """One group of bars per method (summary rows), one bar per (key, colour,
    label) in bars."""
    fig, ax = results.figure()
    labels = [f"{r['method']}\n{r['snapshots']} snapshots" for r in summary]
    width = 0.75 / len(bars)
    for k, (key, color, name) in enumerate(bars):
        drawn = ax.bar([i + (k - (len(bars) - 1) / 2) * width for i in range(len(summary))],
                       [r[key] for r in summary], width, color=color, label=name)
        ax.bar_label(drawn, fontsize=7)
    ax.set_xticks(range(len(summary)), labels)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.margins(y=0.3)   # room for the legend above the bars
    ax.legend(fontsize=8, loc="upper right")
    results.save_figure(fig)
