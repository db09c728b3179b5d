"""One measured phase of an experiment: a fresh network with traffic, a
series of snapshots, then the checker over every process's log.  The
phase's tally holds the checker's counts and what the logs say of the run
(short logs, unmatched receives, external causal chains against tau)."""
from __future__ import annotations

from dataclasses import dataclass

from beaver.control.engine.engine import RunSettings, RunSummary
from beaver.control.engine.record import Mode, SnapshotRecord

from beaver.topologies.experiment import Run, Truth
from beaver.topologies.processes import Workload
from beaver.topologies.spec import Spec
from beaver.topologies.experiments.common.outcomes import snapshot_rows, tally
from beaver.topologies.experiments.common.results import Results


@dataclass
class PhaseResult:
    label: str
    summary: RunSummary
    records: list[SnapshotRecord]
    rows: list[dict]
    tally: dict
    truth: Truth | None     # None when the phase was not judged
    summaries: dict         # each process's exit summary, by name


def snapshot_phase(results: Results, label: str, spec: Spec, settings: RunSettings,
                   workload: Workload = Workload(), reports: bool = True,
                   marking: bool = True, warmup: float = 1.0, judge: bool = True,
                   keep: bool = True, **labels) -> PhaseResult:
    """keep=False (unjudged runs): the records stay in the store, and the
    tally counts the run's outcomes."""
    results.progress(f"{label}: {spec.slbs} SLB(s), {settings.count} snapshot(s), "
                     f"mode {settings.mode.value}")
    with Run(spec, results.run_dir(label), workload, reports=reports,
             marking=marking) as run:
        run.start_traffic(warmup)
        summary = run.snapshots(settings, collect=keep)
        run.stop_traffic()
    truth = run.check() if judge else None
    rows = snapshot_rows(run.records, truth.verdicts if truth else {}, phase=label, **labels)
    tau = settings.tau_us if settings.mode is Mode.OGM else None   # only OGM assumes one
    counted = {} if keep else {"taken": summary.finished,
                               **{o.value: n for o, n in summary.outcomes.items()}}
    result = PhaseResult(label, summary, run.records, rows,
                         {**tally(rows), **counted, **timing(summary),
                          **(truth.logs(tau) if truth else {})},
                         truth, run.processes.summaries)
    t = result.tally
    checked = (f"; checker: {t['consistent']} consistent, {t['inconsistent']} inconsistent, "
               f"{t['unjudged']} unjudged, {t['channel_errors']} with channel errors, "
               f"{t['false_accepts']} false accepts; {t['short_logs']} short logs; "
               f"shortest external chain {t['shortest_chain_us']} us, "
               f"{t['chains_under_tau']} under tau" if truth else "")
    results.progress(f"{label}: {t['accepted']} accepted, {t['rejected']} rejected, "
                     f"{t['incomplete']} incomplete{checked}; {summary.rate:.0f} snapshots/s, "
                     f"latency p50 {t['latency_p50_ms']} ms, p99 {t['latency_p99_ms']} ms"
                     + (f", lead {t['lead_ms']} ms" if t['lead_ms'] else ""))
    return result


def timing(summary: RunSummary) -> dict:
    """How long snapshots took, start to stored verdict, and the lead they
    were scheduled with (timed)."""
    def ms(us):
        return round(us / 1000, 2) if us is not None else None
    return {"latency_p50_ms": ms(summary.latency_us(0.5)),
            "latency_p99_ms": ms(summary.latency_us(0.99)),
            "lead_ms": "-".join(str(ms(us)) for us in summary.lead_us) or None,
            "late_inits": summary.late_inits}
