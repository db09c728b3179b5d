"""The controller's verdicts beside the checker's ground truth."""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping

from beaver.control.record import Outcome, SnapshotRecord
from beaver.traffic.checker import Verdict


def snapshot_rows(records: Iterable[SnapshotRecord], truth: Mapping[int, Verdict],
                  **labels) -> list[dict]:
    """One row per snapshot: the verdict, its reason, and the checker's status."""
    rows = []
    for r in records:
        v = truth.get(r.snapshot_id)
        rows.append({**labels, "number": r.number, "snapshot_id": r.snapshot_id,
                     "mode": r.mode.value, "rule": r.rule, "tau_us": r.tau_us,
                     "outcome": r.verdict.outcome.value, "margin_us": r.verdict.margin_us,
                     "t1_minus_t0_us": (r.finished_us - r.started_us
                                        if r.finished_us is not None else None),
                     "reason": r.verdict.reason,
                     "truth": v.status if v else "unjudged",
                     "witness": " -> ".join(map(str, v.witness)) if v else ""})
    return rows


def tally(rows: Iterable[Mapping]) -> dict:
    """Counts, the effective rate (accepted / taken), and where the controller
    and the checker disagree: a false accept is an accepted inconsistent
    snapshot (never allowed for Beaver), a false rejection a rejected
    consistent one."""
    rows = list(rows)
    outcomes = Counter(r["outcome"] for r in rows)
    truths = Counter(r["truth"] for r in rows)
    accepted = outcomes[Outcome.ACCEPTED.value]
    return {"taken": len(rows), **{o.value: outcomes[o.value] for o in Outcome},
            "consistent": truths["consistent"], "inconsistent": truths["inconsistent"],
            "false_accepts": sum(r["outcome"] == Outcome.ACCEPTED.value
                                 and r["truth"] == "inconsistent" for r in rows),
            "false_rejections": sum(r["outcome"] == Outcome.REJECTED.value
                                    and r["truth"] == "consistent" for r in rows),
            "effective_rate": accepted / len(rows) if rows else None}
