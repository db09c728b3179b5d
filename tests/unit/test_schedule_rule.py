"""control/engine/rules.py's by_schedule: the fine rule for a whole batch from each
SLB's schedule and lateness.

Two SLBs whose clocks run 1 s and 2 s ahead of the controller's, each known
to +-10 us, hold a batch of 100 IDs 50 us apart, the first due at T = 20,000
(controller clock); the controller sent the INIT_BATCH at t0 = 10,000.
"""
import random

import pytest

from beaver.control.slbs.clock import Estimate
from beaver.control.engine.record import BatchRecord, Mode, Outcome, ScheduleAck
from beaver.control.engine.rules import by_schedule, fine
from beaver.p4src.wire import FLAG_MARKING, Batch, ControlBody, Status, Track

T0 = 10_000
FIRST_AT = 20_000
COUNT, SPACING = 100, 50
OFFSETS = {"s1": 1_000_000, "s2": 2_000_000}
ERROR = 10.0


def ack(slb, late_at=None, error=ERROR, shift=0, track=Track.FINAL, marking=True,
        count=COUNT, received_at=None, status=Status.OK):
    """An SLB's schedule answer; late_at: its latest late old-ID packet, on
    the controller's clock; shift: its schedule's first time off FIRST_AT."""
    offset = OFFSETS[slb]
    first = FIRST_AT + shift + offset
    body = ControlBody(snapshot_id=1, id_before=COUNT, id_after=COUNT, activate_at=first,
                       flags=FLAG_MARKING if marking else 0)
    late = late_at + offset if late_at is not None else 0
    schedule = Batch(count, SPACING, 0, track, late)
    received = FIRST_AT + COUNT * SPACING + 500 if received_at is None else received_at
    return ScheduleAck(slb, status, body, schedule, T0, received, 1, Estimate(offset, error, 8))


def batch_of(acks, tau=300) -> BatchRecord:
    batch = BatchRecord(1, COUNT, Mode.OGM, "fine", tau, [a.slb for a in acks], T0, 1.7e9,
                        FIRST_AT, SPACING, FIRST_AT + COUNT * SPACING + 500)
    batch.acks = {a.slb: a for a in acks}
    return batch


def per_id(batch: BatchRecord, tau: int) -> list[Outcome]:
    """The fine rule on each ID's bounds, one by one."""
    return [fine(list(batch.record(n).acks.values()), T0, tau).outcome for n in batch.numbers]


def by_batch(acks, tau=300):
    return by_schedule(acks, T0, tau, COUNT, SPACING)


def outcomes(judgement) -> list[Outcome | None]:
    """Per index: the judgement's verdict, or None where it is unclear."""
    return [None if i in judgement.unclear else judgement.verdict.outcome
            for i in range(COUNT)]


def test_on_time_slbs_accept_the_whole_batch_with_one_margin():
    acks = [ack("s1"), ack("s2")]
    j = by_batch(acks)
    assert j.verdict.outcome is Outcome.ACCEPTED and not j.unclear
    # an old-ID packet stamped just before T at one (so before T, and 10 us
    # later) against the switch at T at the other (10 us earlier)
    assert j.verdict.margin_us == pytest.approx(ERROR + ERROR - 300)
    assert per_id(batch_of(acks), 300) == [Outcome.ACCEPTED] * COUNT


@pytest.mark.parametrize("gap,accepted", [(-1, True), (0, False), (1, False)])
def test_clock_bounds_against_tau(gap, accepted):
    """Schedules 2 * 10 us apart at worst: tau just above, at and below."""
    tau = 2 * int(ERROR) - gap
    j = by_batch([ack("s1"), ack("s2")], tau)
    assert j.verdict.margin_us == pytest.approx(gap)
    assert (j.verdict.outcome is Outcome.ACCEPTED) is accepted
    assert not j.unclear


@pytest.mark.parametrize("gap,accepted", [(-1, True), (0, False), (1, False)])
def test_lateness_plus_both_bounds_against_tau(gap, accepted):
    """s2 forwarded an old-ID packet 100 us after the batch's first time:
    late + its microsecond + both bounds against tau decides the first ID."""
    tau = 100 + 1 + 2 * int(ERROR) - gap
    j = by_batch([ack("s1"), ack("s2", late_at=FIRST_AT + 100)], tau)
    if accepted:
        assert j.verdict.outcome is Outcome.ACCEPTED and not j.unclear
        assert j.verdict.margin_us == pytest.approx(gap)
    else:
        assert j.verdict.outcome is Outcome.ACCEPTED
        assert j.unclear == range(1 + gap // SPACING), "the first ID only"


def test_a_late_slb_leaves_exactly_the_ids_its_lateness_reaches_unclear():
    """s2's INIT came 420 us after the first time: its old-ID packets reach
    the IDs due less than tau before them, and no further."""
    tau = 300
    acks = [ack("s1"), ack("s2", late_at=FIRST_AT + 420)]
    j = by_batch(acks, tau)
    reach = [i for i in range(COUNT) if 420 + 1 + 2 * ERROR - i * SPACING >= tau]
    assert j.unclear == range(len(reach)) == range(3)
    assert j.verdict.outcome is Outcome.ACCEPTED
    assert per_id(batch_of(acks), tau) == [Outcome.REJECTED] * 3 + [Outcome.ACCEPTED] * 97


@pytest.mark.parametrize("track", [Track.NONE, Track.KEPT, Track.LOST])
def test_a_schedule_not_kept_from_start_to_end_clears_nothing(track):
    j = by_batch([ack("s1"), ack("s2", track=track)])
    assert j.unclear == range(COUNT) and "s2 did not keep the schedule" in j.verdict.reason


def test_a_stale_answer_or_another_schedule_clears_nothing():
    assert by_batch([ack("s1"), ack("s2", status=Status.STALE)]).unclear == range(COUNT)
    assert by_batch([ack("s1"), ack("s2", count=COUNT - 1)]).unclear == range(COUNT)


def test_marking_off_or_no_clock_rejects_the_batch_whole():
    j = by_batch([ack("s1"), ack("s2", marking=False)])
    assert j.verdict.outcome is Outcome.REJECTED and not j.unclear
    assert "marking is off at s2" in j.verdict.reason
    unaligned = ack("s2")
    unaligned.clock = None
    assert by_batch([ack("s1"), unaligned]).verdict.outcome is Outcome.REJECTED


def test_a_schedule_outside_what_the_controller_saw_is_a_wrong_clock():
    early = by_batch([ack("s1"), ack("s2", shift=T0 - FIRST_AT - 100)])
    assert early.verdict.outcome is Outcome.REJECTED and "before the snapshot existed" in \
        early.verdict.reason
    after = by_batch([ack("s1"), ack("s2", received_at=FIRST_AT)])
    assert after.verdict.outcome is Outcome.REJECTED and "after its answer came back" in \
        after.verdict.reason


def test_clock_errors_wider_than_tau_reject_every_id():
    j = by_batch([ack("s1", error=200), ack("s2", error=200)], tau=300)
    assert j.verdict.outcome is Outcome.REJECTED and not j.unclear
    assert per_id(batch_of([ack("s1", error=200), ack("s2", error=200)]), 300) == \
        [Outcome.REJECTED] * COUNT


def test_one_slb_is_judged_against_itself_on_one_clock():
    """No other clock to misalign with: on time, every ID; late, the IDs
    its late packet came tau or more after."""
    assert by_batch([ack("s1", error=500)]).verdict.outcome is Outcome.ACCEPTED
    j = by_batch([ack("s1", late_at=FIRST_AT + 310)], tau=300)
    assert j.unclear == range(1)


def test_the_batch_rule_is_the_fine_rule_on_each_ids_bounds():
    """Random schedules, errors, offsets between the SLBs and lateness: ID
    by ID, what the schedules clear is what the fine rule accepts on the
    bounds, and what they leave unclear it rejects."""
    rng = random.Random(7)
    for _ in range(300):
        tau = rng.choice([50, 120, 300, 1000])
        acks = [ack(slb, error=rng.choice([0.0, 3.0, 10.0, 40.0]),
                    shift=rng.randrange(0, 60),
                    late_at=(FIRST_AT + rng.randrange(0, 3000) if rng.random() < 0.4
                             else None))
                for slb in rng.sample(sorted(OFFSETS), rng.choice([1, 2]))]
        j = by_batch(acks, tau)
        truth = per_id(batch_of(acks, tau), tau)
        judged = outcomes(j)
        assert [t for t, o in zip(truth, judged) if o is None] == \
            [Outcome.REJECTED] * len(j.unclear)
        assert [o for o in judged if o is not None] == \
            [t for t, o in zip(truth, judged) if o is not None], (tau, acks)
