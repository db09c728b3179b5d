"""control/rules.py on recorded acknowledgements.

Two SLBs whose data-plane clocks run 1 s and 2 s ahead of the controller's,
each known to +-10 us.  The controller sent the first INIT at t0 = 10,000.
"""
import pytest

from beaver.control.clock import Estimate
from beaver.control.record import Ack, Outcome
from beaver.control.rules import coarse, fine
from beaver.p4src.wire import ControlBody, Status

T0 = 10_000
OFFSETS = {"s1": 1_000_000, "s2": 2_000_000}


def ack(slb, switch_at, last_old_at, status=Status.OK, error=10.0):
    """An acknowledgement whose times are given on the controller's clock."""
    offset = OFFSETS[slb]
    body = ControlBody(snapshot_id=5, id_before=4, id_after=5,
                       switch_time=switch_at + offset,
                       last_old_time=last_old_at + offset if last_old_at else 0)
    return Ack(slb, status, body, T0, switch_at + 300, 1, Estimate(offset, error, 8))


def test_coarse_accepts_only_below_tau():
    assert coarse(T0, T0 + 299, tau_us=300).outcome is Outcome.ACCEPTED
    rejected = coarse(T0, T0 + 420, tau_us=300)
    assert rejected.outcome is Outcome.REJECTED and rejected.rule == "coarse"
    assert rejected.margin_us == 120 and "over by 120 us" in rejected.reason
    assert coarse(T0, T0 + 300, tau_us=300).outcome is Outcome.REJECTED


def test_fine_accepts_old_packets_before_the_first_switch_plus_tau():
    acks = [ack("s1", T0 + 100, T0 + 90), ack("s2", T0 + 400, T0 + 350)]
    v = fine(acks, T0, tau_us=300)
    # latest old packet (s2, 350 + 10 error) vs first switch (s1, 100 - 10 error)
    assert v.outcome is Outcome.ACCEPTED and v.margin_us == pytest.approx(360 - 90 - 300)


def test_fine_rejects_an_old_packet_later_than_the_first_switch_plus_tau():
    acks = [ack("s1", T0 + 100, T0 + 90), ack("s2", T0 + 500, T0 + 450)]
    v = fine(acks, T0, tau_us=300)
    assert v.outcome is Outcome.REJECTED and v.rule == "fine"
    assert v.margin_us == pytest.approx(460 - 90 - 300)
    assert "s2 forwarded an old-ID packet" in v.reason and "s1 switched" in v.reason


def test_fine_takes_clock_error_against_acceptance():
    # 370 + 10 - (100 - 10) = 290 < 300, but 370 + 40 - (100 - 40) = 350 is not
    acks = [ack("s1", T0 + 100, T0 + 90), ack("s2", T0 + 400, T0 + 370)]
    assert fine(acks, T0, tau_us=300).outcome is Outcome.ACCEPTED
    sloppy = [ack("s1", T0 + 100, T0 + 90, error=40), ack("s2", T0 + 400, T0 + 370, error=40)]
    assert fine(sloppy, T0, tau_us=300).outcome is Outcome.REJECTED


def test_one_slbs_own_times_are_compared_without_clock_error():
    # s1 switched first, its last old-ID packet 10 us before on its own clock;
    # through its clock estimate (+-200 us) the two would look 290 us apart
    acks = [ack("s1", T0 + 100, T0 + 90, error=200), ack("s2", T0 + 2000, 0, error=200)]
    v = fine(acks, T0, tau_us=250)
    assert v.outcome is Outcome.ACCEPTED and v.margin_us == pytest.approx(-10 - 250)


def test_fine_ignores_slbs_that_never_forwarded_a_marked_packet():
    acks = [ack("s1", T0 + 100, 0), ack("s2", T0 + 5000, 0)]
    v = fine(acks, T0, tau_us=300)
    assert v.outcome is Outcome.ACCEPTED and "no SLB forwarded" in v.reason


def test_no_switch_counts_as_earlier_than_t0():
    # s1's clock estimate places its switch before the INIT was even sent
    acks = [ack("s1", T0 - 500, T0 - 600), ack("s2", T0 + 200, T0 + 250)]
    v = fine(acks, T0, tau_us=300)
    assert v.outcome is Outcome.ACCEPTED and v.margin_us == pytest.approx(260 - 300)


def test_a_stale_slb_switched_no_earlier_than_t0_and_its_last_old_is_an_upper_bound():
    # s2 had already moved past the ID (learned a newer one): its record is of that ID
    stale = ack("s2", T0 + 900, T0 + 800, status=Status.STALE)
    v = fine([ack("s1", T0 + 1000, T0 + 950), stale], T0, tau_us=300)
    assert v.outcome is Outcome.REJECTED, "s2's switch time is only bounded by t0"
    assert v.margin_us == pytest.approx(960 - 0 - 300)
    assert fine([ack("s1", T0 + 1000, T0 + 950), stale], T0,
                tau_us=1000).outcome is Outcome.ACCEPTED


def test_fine_without_a_clock_estimate_rejects():
    no_clock = ack("s2", T0 + 100, T0 + 50)
    no_clock.clock = None
    v = fine([ack("s1", T0 + 100, T0 + 50), no_clock], T0, tau_us=300)
    assert v.outcome is Outcome.REJECTED and "no clock alignment for s2" in v.reason
