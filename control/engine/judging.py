"""Verdicts from the SLBs' answers: for one snapshot from its records, for a
batch from its schedules (rules.py holds the rules themselves).

Whatever the rule, a snapshot is never accepted while an SLB reports its
marking off, or an ID ahead of every ID this controller started (learned
from a forged STAMP, or set by another controller).
"""
from __future__ import annotations

from dataclasses import replace

from beaver.p4src import ids
from beaver.p4src.wire import Status

from beaver.control.engine import rules
from beaver.control.engine.record import Ack, BatchRecord, Mode, Outcome, ScheduleAck, SnapshotRecord, Verdict
from beaver.control.engine.settings import RunSettings


def judge(record: SnapshotRecord, settings: RunSettings, newest_id: int,
          late: set[str]) -> Verdict:
    """One snapshot's verdict from every SLB's final answer.  late: the SLBs
    whose INIT arrived after the activation time (timed)."""
    acks = _by_name(record.acks.values())
    if (ahead := _ahead(acks, newest_id)) is not None:
        return ahead
    if behind := [a.slb for a in acks if a.status is Status.STALE
                  and not ids.is_newer(a.body.id_after, record.snapshot_id)]:
        return Verdict(Outcome.REJECTED, f"{', '.join(behind)} never reached ID "
                       f"{record.snapshot_id} (answered STALE from behind it)", "ids")
    if (refused := rules.unmarked(acks, record.rule)) is not None:
        return refused
    if record.mode is Mode.MGM:
        return Verdict(Outcome.ACCEPTED, "mgm: the only gateway initiated first", "mgm")
    if record.mode is Mode.BLOCKING:
        return Verdict(Outcome.ACCEPTED, "blocking: every SLB held inbound traffic until "
                       "all had committed", "blocking")
    t0, t1 = rules.switch_window(record)
    verdict = (rules.fine(acks, t0, settings.tau_us) if settings.rule == rules.FINE else
               rules.coarse(t0, t1, settings.tau_us, acks))
    if verdict.outcome is Outcome.REJECTED and record.activate_us is not None:
        verdict = replace(verdict, reason=verdict.reason + _switched_late(acks, late))
    return verdict


def judge_batch(batch: BatchRecord, settings: RunSettings,
                newest_id: int) -> rules.ScheduleJudgement:
    """A batch's verdict from every SLB's schedule, and the numbers (as
    indexes) it leaves to their own records."""
    acks = _by_name(batch.acks.values())
    if (ahead := _ahead(acks, newest_id)) is not None:
        return rules.ScheduleJudgement(ahead, range(0))
    return rules.by_schedule(acks, batch.started_us, settings.tau_us, batch.count,
                             batch.spacing_us)


def _by_name(acks):
    """The answers in SLB name order: a verdict and its reason must not
    depend on which SLB happened to answer first (a replay answers in
    name order)."""
    return sorted(acks, key=lambda a: a.slb)


def _ahead(acks: list[Ack] | list[ScheduleAck], newest_id: int) -> Verdict | None:
    ahead = [a for a in acks if ids.is_newer(a.body.id_after, newest_id)]
    if not ahead:
        return None
    a = ahead[0]
    return Verdict(Outcome.REJECTED, f"{a.slb} is at ID {a.body.id_after}, ahead of every "
                   f"ID this controller started (newest {newest_id}): learned from a forged "
                   "STAMP, or set by another controller", "ids")


def _switched_late(acks: list[Ack], late: set[str]) -> str:
    """Why a timed snapshot's SLBs did not switch at one moment: those that
    forwarded old-ID packets after the activation time, which on time they
    never do, and why: an INIT that arrived after it, or more schedules
    falling due at once than one packet activates (epoch.p4's DUE_STEPS)."""
    reasons = [a.slb + (" (its INIT arrived after it)" if a.slb in late else
                        " (more schedules due at once than one packet activates)")
               for a in acks if a.exact and a.body.activate_at
               and a.body.last_old_time >= a.body.activate_at]
    return f"; old-ID packets after the activation time at {', '.join(reasons)}" if reasons \
        else ""
