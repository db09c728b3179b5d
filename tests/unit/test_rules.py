"""control/engine/rules.py on recorded acknowledgements.

Two SLBs whose data-plane clocks run 1 s and 2 s ahead of the controller's,
each known to +-10 us.  The controller sent the first INIT at t0 = 10,000.
"""
import pytest

from beaver.control.slbs.clock import Estimate
from beaver.control.engine.record import Ack, Outcome
from beaver.control.engine.rules import coarse, fine
from beaver.p4src.wire import FLAG_MARKING, ControlBody, Status

T0 = 10_000
OFFSETS = {"s1": 1_000_000, "s2": 2_000_000}


def ack(slb, switch_at, last_old_at, status=Status.OK, error=10.0, marking=True,
        received_at=None):
    """An acknowledgement whose times are given on the controller's clock."""
    offset = OFFSETS[slb]
    body = ControlBody(snapshot_id=5, id_before=4, id_after=5,
                       switch_time=switch_at + offset,
                       last_old_time=last_old_at + offset if last_old_at else 0,
                       flags=FLAG_MARKING if marking else 0)
    received = switch_at + 300 if received_at is None else received_at
    return Ack(slb, status, body, T0, received, 1, Estimate(offset, error, 8))


def latest(us):
    """Where the rule places an old-ID packet stamped at us: its microsecond
    and the clock error (10) later."""
    return us + 1 + 10


def earliest(us):
    return us - 10


def test_coarse_accepts_only_below_tau():
    assert coarse(T0, T0 + 299, tau_us=300).outcome is Outcome.ACCEPTED
    rejected = coarse(T0, T0 + 420, tau_us=300)
    assert rejected.outcome is Outcome.REJECTED and rejected.rule == "coarse"
    assert rejected.margin_us == 120 and "over by 120 us" in rejected.reason
    assert coarse(T0, T0 + 300, tau_us=300).outcome is Outcome.REJECTED


def test_fine_accepts_old_packets_before_the_first_switch_plus_tau():
    acks = [ack("s1", T0 + 100, T0 + 90), ack("s2", T0 + 400, T0 + 350)]
    v = fine(acks, T0, tau_us=300)
    # latest old packet (s2 at 350) vs first switch (s1 at 100)
    assert v.outcome is Outcome.ACCEPTED
    assert v.margin_us == pytest.approx(latest(350) - earliest(100) - 300)


@pytest.mark.parametrize("gap,accepted", [(-1, True), (0, False), (1, False)])
def test_fine_rejects_a_gap_of_exactly_tau(gap, accepted):
    """tau is the least chain: an old-ID packet tau after a switch may be
    caused by it.  The gap is as the rule sees it, errors included."""
    tau = 300
    old_at = T0 + 100 - 10 - 1 - 10 + tau + gap   # latest(old_at) - earliest(T0 + 100) = tau + gap
    acks = [ack("s1", T0 + 100, T0 + 90), ack("s2", old_at + 5, old_at)]
    v = fine(acks, T0, tau_us=tau)
    assert v.margin_us == pytest.approx(gap)
    assert (v.outcome is Outcome.ACCEPTED) is accepted

def test_fine_rejects_an_old_packet_later_than_the_first_switch_plus_tau():
    acks = [ack("s1", T0 + 100, T0 + 90), ack("s2", T0 + 500, T0 + 450)]
    v = fine(acks, T0, tau_us=300)
    assert v.outcome is Outcome.REJECTED and v.rule == "fine"
    assert v.margin_us == pytest.approx(latest(450) - earliest(100) - 300)
    assert "s2 forwarded an old-ID packet" in v.reason and "s1 switched" in v.reason


def test_fine_takes_clock_error_against_acceptance():
    # 370 + 11 - (100 - 10) = 291 < 300, but 370 + 41 - (100 - 40) = 351 is not
    acks = [ack("s1", T0 + 100, T0 + 90), ack("s2", T0 + 400, T0 + 370)]
    assert fine(acks, T0, tau_us=300).outcome is Outcome.ACCEPTED
    sloppy = [ack("s1", T0 + 100, T0 + 90, error=40), ack("s2", T0 + 400, T0 + 370, error=40)]
    assert fine(sloppy, T0, tau_us=300).outcome is Outcome.REJECTED


def test_one_slbs_own_times_are_compared_without_clock_error():
    # s1 switched first, its last old-ID packet 10 us before on its own clock;
    # through its clock estimate (+-200 us) the two would look 290 us apart
    acks = [ack("s1", T0 + 100, T0 + 90, error=200), ack("s2", T0 + 2000, 0, error=200)]
    v = fine(acks, T0, tau_us=250)
    assert v.outcome is Outcome.ACCEPTED and v.margin_us == pytest.approx(-10 + 1 - 250)


def test_fine_ignores_slbs_that_never_forwarded_a_marked_packet():
    acks = [ack("s1", T0 + 100, 0), ack("s2", T0 + 5000, 0)]
    v = fine(acks, T0, tau_us=300)
    assert v.outcome is Outcome.ACCEPTED and "no SLB forwarded" in v.reason


def test_no_switch_counts_as_earlier_than_t0():
    # s1's switch maps to [T0 - 5 - 10, T0 - 5 + 11]: it cannot be before T0
    acks = [ack("s1", T0 - 5, T0 - 100), ack("s2", T0 + 200, T0 + 250)]
    v = fine(acks, T0, tau_us=300)
    assert v.outcome is Outcome.ACCEPTED and v.margin_us == pytest.approx(latest(T0 + 250) - T0 - 300)


def test_a_switch_time_before_the_snapshot_existed_is_a_wrong_clock():
    # s1's switch maps wholly before T0 (its estimate is off): never clamp it
    acks = [ack("s1", T0 - 500, T0 - 600), ack("s2", T0 + 200, T0 + 250)]
    v = fine(acks, T0, tau_us=10**6)
    assert v.outcome is Outcome.REJECTED and "s1's switch time" in v.reason
    assert "before the snapshot existed" in v.reason


def test_a_switch_time_after_its_own_answer_is_a_wrong_clock():
    acks = [ack("s1", T0 + 100, T0 + 90), ack("s2", T0 + 400, T0 + 350, received_at=T0 + 300)]
    v = fine(acks, T0, tau_us=10**6)
    assert v.outcome is Outcome.REJECTED and "after its answer came back" in v.reason
    within = [ack("s1", T0 + 100, T0 + 90), ack("s2", T0 + 400, T0 + 350, received_at=T0 + 395)]
    assert fine(within, T0, tau_us=10**6).outcome is Outcome.ACCEPTED, "within the error"


@pytest.mark.parametrize("rule", ["fine", "coarse"])
def test_an_slb_with_marking_off_rejects_under_both_rules(rule):
    acks = [ack("s1", T0 + 100, T0 + 90), ack("s2", T0 + 110, 0, marking=False)]
    v = (fine(acks, T0, tau_us=10**6) if rule == "fine" else
         coarse(T0, T0 + 200, 10**6, acks))
    assert v.outcome is Outcome.REJECTED and "marking is off at s2" in v.reason


def test_a_scheduled_answer_is_no_record_to_judge():
    acks = [ack("s1", T0 + 100, T0 + 90), ack("s2", T0 + 110, T0 + 50, status=Status.SCHEDULED)]
    v = fine(acks, T0, tau_us=10**6)
    assert v.outcome is Outcome.REJECTED and "no final record from s2" in v.reason


def test_a_stale_slb_switched_no_earlier_than_t0_and_its_last_old_is_an_upper_bound():
    # s2 had already moved past the ID (learned a newer one): its record is of that ID
    stale = ack("s2", T0 + 900, T0 + 800, status=Status.STALE)
    v = fine([ack("s1", T0 + 1000, T0 + 950), stale], T0, tau_us=300)
    assert v.outcome is Outcome.REJECTED, "s2's switch time is only bounded by t0"
    assert v.margin_us == pytest.approx(latest(T0 + 950) - T0 - 300)
    assert fine([ack("s1", T0 + 1000, T0 + 950), stale], T0,
                tau_us=1000).outcome is Outcome.ACCEPTED


def test_fine_without_a_clock_estimate_rejects():
    no_clock = ack("s2", T0 + 100, T0 + 50)
    no_clock.clock = None
    v = fine([ack("s1", T0 + 100, T0 + 50), no_clock], T0, tau_us=300)
    assert v.outcome is Outcome.REJECTED and "no clock alignment for s2" in v.reason
