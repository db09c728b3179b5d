"""One measured phase of an experiment: a fresh network with traffic, a
series of snapshots, then the checker over every process's log."""
from __future__ import annotations

from dataclasses import dataclass

from beaver.control.engine import RunSettings, RunSummary
from beaver.control.record import SnapshotRecord

from ..experiment import Run
from ..processes import Workload
from ..spec import Spec
from .outcomes import snapshot_rows, tally
from .results import Results


@dataclass
class PhaseResult:
    label: str
    summary: RunSummary
    records: list[SnapshotRecord]
    rows: list[dict]
    tally: dict


def snapshot_phase(results: Results, label: str, spec: Spec, settings: RunSettings,
                   workload: Workload = Workload(), reports: bool = True,
                   marking: bool = True, warmup: float = 1.0, judge: bool = True,
                   **labels) -> PhaseResult:
    results.progress(f"{label}: {spec.slbs} SLB(s), {settings.count} snapshot(s), "
                     f"mode {settings.mode.value}")
    with Run(spec, results.run_dir(label), workload, reports=reports,
             marking=marking) as run:
        run.start_traffic(warmup)
        summary = run.snapshots(settings)
        run.stop_traffic()
    truth = run.check() if judge else {}
    rows = snapshot_rows(run.records, truth, phase=label, **labels)
    result = PhaseResult(label, summary, run.records, rows, tally(rows))
    t = result.tally
    truth = (f"; checker: {t['consistent']} consistent, {t['inconsistent']} inconsistent"
             if judge else "")
    results.progress(f"{label}: {t['accepted']} accepted, {t['rejected']} rejected, "
                     f"{t['incomplete']} incomplete{truth}; {summary.rate:.0f} snapshots/s")
    return result
