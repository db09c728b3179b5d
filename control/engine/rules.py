"""The OGM detection rules: could the cut be inconsistent?

A causal chain from an initiated SLB, through the out-group, back in
through a not-yet-initiated SLB takes at least tau.  Both rules accept only
when no such chain fits, so a gap of exactly tau is rejected.

coarse (the paper's prototype): accept iff t1 - t0 < tau, where every SLB
  switched between t0 and t1 on the controller's clock (immediate
  initiation: first INIT sent, last acknowledgement back).

fine: t0 as for coarse (switch_window); each SLB reports, on its own
  clock, when it switched to the ID and when it last forwarded a packet
  marked with an older one.  Mapped to the
  controller's clock, reject iff some SLB's last old-ID packet came tau or
  more after the earliest switch.  Clock error is taken against acceptance:
  last-old times at their latest, switch times at their earliest, except
  that an SLB's own two times share one clock and are compared exactly.
  Each mapped switch time must fit what the controller saw: not before the
  snapshot existed (t0), not after the answer that reported it came back.
  A switch time outside that is a wrong clock, and rejects; inside, the
  earliest switch is the later of t0 and the mapping.  An SLB that passed
  the ID without recording it (STALE) has only those bounds, and its record
  (of its newer ID) bounds its last old-ID packet from above.

An SLB with marking off forwards ID-0 packets, old for every snapshot, and
keeps no record: both rules reject while any SLB reports it.

by schedule (the fine rule for a batch at once): an SLB that held a
schedule from before its first ID until its last (Track.FINAL) moved to
each ID n at T_n or later on its own clock, and forwarded every packet
older than n before max(T_n, late_last + 1).  Those are bounds on the
records the fine rule reads, so the fine rule on them (BatchRecord.record
builds them) judges n at least as strictly as on the records themselves,
and for on-time SLBs they hold for every ID of the batch alike: one
number per SLB judges the whole batch.  The IDs it does not clear (a late
SLB's first ones, or every ID when an SLB did not keep its schedule) are
judged on their own records instead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from beaver.p4src.wire import Status, Track

from beaver.control.slbs.clock import TICK_US
from beaver.control.engine.record import Ack, Outcome, ScheduleAck, SnapshotRecord, Verdict

COARSE = "coarse"
FINE = "fine"
FINAL = (Status.OK, Status.ALREADY, Status.STALE)   # an answer that ends an SLB's part


def unmarked(acks: list[Ack], rule: str) -> Verdict | None:
    """The rejection for SLBs whose marking is off, or for missing records."""
    off = [a.slb for a in acks if not a.body.marking]
    if off:
        return Verdict(Outcome.REJECTED, f"{rule} rule: marking is off at {', '.join(off)}: "
                       "its packets carry no snapshot ID", rule)
    pending = [a.slb for a in acks if a.status not in FINAL]
    if pending:
        return Verdict(Outcome.REJECTED, f"{rule} rule: no final record from "
                       f"{', '.join(pending)}", rule)
    return None


def switch_window(record: SnapshotRecord) -> tuple[int, int]:
    """(t0, t1): every SLB switched in between; t0 is the t0 of both rules.
    No SLB switched before the ID existed, nor, under timed initiation,
    before the earliest activation time could have come (an SLB reaches the
    ID at its time, on a late INIT's arrival, or by learning it from one
    that did); each had switched when the answer that showed it arrived."""
    t0 = record.started_us
    if record.activate_us is not None:
        times = [a.clock.to_controller(a.body.activate_at)[0]
                 if a.clock and a.body.activate_at and a.exact else record.started_us
                 for a in record.acks.values()]
        t0 = max(t0, int(min(times)))
    return t0, record.finished_us


def coarse(t0_us: int, t1_us: int, tau_us: int, acks: list[Ack] = ()) -> Verdict:
    if (refused := unmarked(list(acks), COARSE)) is not None:
        return refused
    elapsed = t1_us - t0_us
    margin = elapsed - tau_us
    if margin >= 0:
        return Verdict(Outcome.REJECTED, f"coarse rule: t1 - t0 = {elapsed} us is not "
                       f"below tau = {tau_us} us (over by {margin} us)", COARSE, margin)
    return Verdict(Outcome.ACCEPTED, f"coarse rule: t1 - t0 = {elapsed} us < tau = "
                   f"{tau_us} us", COARSE, margin)


def fine(acks: list[Ack], t0_us: int, tau_us: int) -> Verdict:
    missing = [a.slb for a in acks if a.clock is None]
    if missing:
        return Verdict(Outcome.REJECTED, f"fine rule: no clock alignment for "
                       f"{', '.join(missing)}", FINE)
    if (refused := unmarked(acks, FINE)) is not None:
        return refused
    switched = {}   # earliest each SLB can have switched, on the controller's clock
    for a in acks:
        low, high = a.clock.to_controller(a.body.switch_time)
        if not a.exact:   # the newer ID's switch: passing ours, no earlier than t0
            switched[a.slb] = t0_us
            if high < t0_us:
                return Verdict(Outcome.REJECTED,
                               f"fine rule: {a.slb} moved past this ID at [{low:.0f}, "
                               f"{high:.0f}] us, before the snapshot existed (t0 = {t0_us}): "
                               "an ID from outside this controller", FINE)
            continue
        if high < t0_us or low > a.received_us:
            when = ("before the snapshot existed" if high < t0_us else
                    "after its answer came back")
            return Verdict(Outcome.REJECTED,
                           f"fine rule: {a.slb}'s switch time maps to [{low:.0f}, {high:.0f}] "
                           f"us, {when} (t0 = {t0_us}, answer at {a.received_us}): its clock "
                           f"estimate ({a.clock.offset_us:.0f} +- {a.clock.error_us:.0f} us) "
                           "is wrong", FINE)
        switched[a.slb] = max(t0_us, low)
    worst = None   # (how long after a switch an old-ID packet left, its SLB, the switched SLB)
    for old in acks:
        if old.body.last_old_time == 0:   # never forwarded a marked packet
            continue
        latest = old.clock.to_controller(old.body.last_old_time)[1]
        for new in acks:
            if new is old and old.exact:   # one switch, one clock: no alignment error
                after = old.body.last_old_time + TICK_US - old.body.switch_time
            else:
                after = latest - switched[new.slb]
            if worst is None or after > worst[0]:
                worst = (after, old.slb, new.slb)
    if worst is None:
        return Verdict(Outcome.ACCEPTED, "fine rule: no SLB forwarded an old-ID packet", FINE)
    after, last_slb, first_slb = worst
    margin = after - tau_us
    if margin >= 0:
        return Verdict(Outcome.REJECTED,
                       f"fine rule: {last_slb} forwarded an old-ID packet {after:.0f} us after "
                       f"{first_slb} switched, tau = {tau_us} us (over by {margin:.0f} us)",
                       FINE, margin)
    return Verdict(Outcome.ACCEPTED,
                   f"fine rule: last old-ID packet ({last_slb}) {after:.0f} us after the "
                   f"switch of {first_slb}, within tau = {tau_us} us", FINE, margin)


@dataclass(frozen=True)
class ScheduleJudgement:
    """What the schedules say of a batch: `verdict` holds for every index
    not in `unclear`, which must be judged on its own records."""
    verdict: Verdict
    unclear: range


def by_schedule(acks: list[ScheduleAck], t0_us: int, tau_us: int, count: int,
                spacing_us: int) -> ScheduleJudgement:
    """The fine rule for every ID of a batch from each SLB's schedule: the
    verdict `fine` gives each ID on BatchRecord.record's bounds, found in
    O(|G|^2) rather than per ID (tests/unit/test_schedule_rule.py holds it to
    that).  A whole batch is rejected for what no record can mend (a clock
    missing or wrong, marking off); it is unclear where an SLB did not keep
    its schedule, or at the first IDs a late SLB may have reached."""
    nothing, everything = range(0), range(count)
    missing = [a.slb for a in acks if a.clock is None]
    if missing:
        return ScheduleJudgement(Verdict(Outcome.REJECTED, f"fine rule: no clock alignment "
                                         f"for {', '.join(missing)}", FINE), nothing)
    off = [a.slb for a in acks if not a.body.marking]
    if off:
        return ScheduleJudgement(Verdict(Outcome.REJECTED, f"fine rule: marking is off at "
                                         f"{', '.join(off)}: its packets carry no snapshot ID",
                                         FINE), nothing)
    kept = [a for a in acks if a.status is Status.OK and a.schedule.track == Track.FINAL
            and a.schedule.count == count and (count == 1 or a.schedule.spacing == spacing_us)]
    for a in kept:
        first_low, first_high = a.clock.to_controller(a.time_of(0))
        if first_high < t0_us or a.clock.to_controller(a.time_of(count - 1))[0] > a.received_us:
            when = ("before the snapshot existed" if first_high < t0_us else
                    "after its answer came back")
            return ScheduleJudgement(Verdict(
                Outcome.REJECTED, f"fine rule: {a.slb}'s schedule maps to times {when} (t0 = "
                f"{t0_us}, answer at {a.received_us}): its clock estimate "
                f"({a.clock.offset_us:.0f} +- {a.clock.error_us:.0f} us) is wrong", FINE),
                nothing)
    unkept = [a.slb for a in acks if a not in kept
              or a.clock.to_controller(a.time_of(0))[0] < t0_us]   # the bounds assume t0 before
    if unkept:
        return ScheduleJudgement(Verdict(Outcome.REJECTED, f"fine rule: {', '.join(unkept)} "
                                         "did not keep the schedule", FINE), everything)
    late = [a for a in acks if a.schedule.late_last >= a.time_of(0)]
    reach = max((_reach(a, acks, tau_us, count, spacing_us) for a in late), default=0)
    if reach == count:
        return ScheduleJudgement(Verdict(Outcome.REJECTED, f"fine rule: "
                                         f"{', '.join(a.slb for a in late)} switched late",
                                         FINE), everything)
    after, last_slb, first_slb = max([_on_time_gap(acks)] +
                                     [_late_gap(a, acks, reach) for a in late])
    margin = after - tau_us
    if margin >= 0:
        return ScheduleJudgement(Verdict(
            Outcome.REJECTED, f"fine rule by schedule: {last_slb} may have forwarded an "
            f"old-ID packet {after:.0f} us after {first_slb} switched, tau = {tau_us} us "
            f"(over by {margin:.0f} us)", FINE, margin), nothing)
    return ScheduleJudgement(Verdict(
        Outcome.ACCEPTED, f"fine rule by schedule: old-ID packets ({last_slb}) at most "
        f"{after:.0f} us after the switch of {first_slb}, within tau = {tau_us} us", FINE,
        margin), range(reach))


def _on_time_gap(acks: list[ScheduleAck]) -> tuple[float, str, str]:
    """The widest gap the schedules allow if no SLB was late: an old-ID
    packet just before T_n at one SLB, against the earliest switch, at T_n,
    at another, both mapped with their errors against acceptance.  The
    clocks are constant offsets, so it is the same for every ID."""
    worst = (float(TICK_US - 1), acks[0].slb, acks[0].slb)   # an SLB against itself
    for old in acks:
        latest = old.clock.to_controller(old.time_of(0) - 1)[1]
        for new in acks:
            if new is not old:
                worst = max(worst, (latest - new.clock.to_controller(new.time_of(0))[0],
                                    old.slb, new.slb))
    return worst


def _late_gap(late: ScheduleAck, acks: list[ScheduleAck], index: int) -> tuple[float, str, str]:
    """The gap a late SLB's latest old-ID packet leaves at the index-th ID."""
    own = (float(late.schedule.late_last + TICK_US - late.time_of(index)), late.slb, late.slb)
    latest = late.clock.to_controller(late.schedule.late_last)[1]
    return max([own] + [(latest - a.clock.to_controller(a.time_of(index))[0], late.slb, a.slb)
                        for a in acks if a is not late])


def _reach(late: ScheduleAck, acks: list[ScheduleAck], tau_us: int, count: int,
           spacing_us: int) -> int:
    """How many of the batch's first IDs a late SLB's latest old-ID packet
    may have reached within tau: the gap shrinks by the spacing at every
    ID, so it is the first index whose gap is under tau."""
    gap = _late_gap(late, acks, 0)[0]
    if gap < tau_us:
        return 0
    if count == 1:
        return 1
    return min(count, math.floor((gap - tau_us) / spacing_us) + 1)
