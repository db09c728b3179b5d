"""The controller's verdicts beside the checker's ground truth.

Only a snapshot the checker proved consistent (cut consistent, no channel
error) counts as consistent: an accepted snapshot that is inconsistent,
unjudged (a log too short to tell), incomplete to the checker, or with
channel errors is a false accept.
"""
from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping

from beaver.control.engine.record import Outcome, SnapshotRecord
from beaver.traffic.analysis.checker import Verdict

UNCHECKED = "unchecked"   # the truth of a snapshot no checker verdict covers


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
                     "truth": v.status if v else UNCHECKED,
                     "channel_errors": len(v.channel_errors) if v else 0,
                     "witness": " -> ".join(map(str, v.witness)) if v else ""})
    return rows


def proven_consistent(row: Mapping) -> bool:
    return row["truth"] == "consistent" and row["channel_errors"] == 0


def judged(row: Mapping) -> str:
    """The checker's word on a row, channel errors included: consistent (proven),
    channel errors, inconsistent, unjudged, incomplete or unchecked."""
    if row["truth"] == "consistent" and row["channel_errors"]:
        return "channel errors"
    return row["truth"]


def tally(rows: Iterable[Mapping]) -> dict:
    """Counts, the effective rate (accepted / taken), and where the controller
    and the checker disagree: a false accept is an accepted snapshot the
    checker judged and did not prove consistent (never allowed for Beaver),
    a false rejection a rejected one it proved consistent; in a long run the
    checker judges a sample, and "accepted_unchecked" counts the accepted
    ones it did not judge (proven nothing either way).  "truth_incomplete"
    counts the cuts the checker found some in-group process missing from."""
    rows = list(rows)
    outcomes = Counter(r["outcome"] for r in rows)
    truths = Counter(r["truth"] for r in rows)
    accepted = outcomes[Outcome.ACCEPTED.value]
    return {"taken": len(rows), **{o.value: outcomes[o.value] for o in Outcome},
            "consistent": sum(map(proven_consistent, rows)),
            "inconsistent": truths["inconsistent"], "unjudged": truths["unjudged"],
            "truth_incomplete": truths["incomplete"], UNCHECKED: truths[UNCHECKED],
            "channel_errors": sum(r["channel_errors"] > 0 for r in rows),
            "false_accepts": sum(r["outcome"] == Outcome.ACCEPTED.value and
                                 r["truth"] != UNCHECKED and not proven_consistent(r)
                                 for r in rows),
            "accepted_unchecked": sum(r["outcome"] == Outcome.ACCEPTED.value and
                                      r["truth"] == UNCHECKED for r in rows),
            "false_rejections": sum(r["outcome"] == Outcome.REJECTED.value
                                    and proven_consistent(r) for r in rows),
            "effective_rate": accepted / len(rows) if rows else None}
