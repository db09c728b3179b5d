"""control/slbs/clock.py on recorded round trips.

The true offset (switch clock - controller clock) is 4500 us throughout,
except where a test restarts the switch."""
import logging

import pytest

from beaver.control.slbs.clock import PROBE, SETTLE_SAMPLES, ClockEstimate, Estimate, Sample

TRUE = 4500


def probe(sent, ingress_after, egress_after, received):
    """A probe stamped ingress_after us after it left and egress_after us
    after that, on a switch whose clock is TRUE ahead."""
    ingress = sent + ingress_after + TRUE
    return Sample(sent, ingress, ingress + egress_after, received)


def test_one_round_trip_bounds_the_offset_by_its_delay_and_the_tick():
    e = ClockEstimate("s1", PROBE)
    e.add(Sample(sent_us=1000, first_dp_us=5600, last_dp_us=5600, received_us=1200))
    got = e.current
    assert (got.low_us, got.high_us) == (4400 - 1, 4600 + 1)
    assert got.source == PROBE and got.samples == 1


def test_time_inside_the_switch_costs_no_error():
    # 300 us spent queueing between the stamps, 5 us each way on the wire
    e = ClockEstimate("s1", PROBE)
    e.add(probe(1000, 5, 300, 1000 + 5 + 300 + 5))
    assert e.current.error_us == pytest.approx((10 + 2) / 2)
    assert e.current.low_us <= TRUE <= e.current.high_us


def test_intersecting_samples_narrows_the_bound_around_the_truth():
    e = ClockEstimate("s1", PROBE)
    e.add(probe(0, 2, 0, 40))      # fast out, slow back
    e.add(probe(100, 30, 0, 133))  # slow out, fast back
    assert e.current.low_us <= TRUE <= e.current.high_us
    assert e.current.error_us < 5 and e.current.samples == 2


def test_a_sample_that_contradicts_the_estimate_starts_it_again_and_says_so(caplog):
    e = ClockEstimate("s1", PROBE)
    for t in range(0, 1000, 100):
        e.add(probe(t, 3, 0, t + 6))
    restarted = Sample(2000, 2000 + 3 + 9000, 2000 + 3 + 9000, 2006)   # new origin
    with caplog.at_level(logging.WARNING):
        e.add(restarted)
    assert "contradicts" in caplog.text and e.resets == 1
    assert e.current is None, "no estimate while the lone new sample may be the wrong one"
    for t in range(3000, 3000 + 100 * (SETTLE_SAMPLES - 1), 100):
        e.add(Sample(t, t + 3 + 9000, t + 3 + 9000, t + 6))
    assert e.current.samples == SETTLE_SAMPLES and e.current.low_us > 8000


def test_reset_forgets_everything():
    e = ClockEstimate("s1", PROBE)
    e.add(probe(0, 3, 0, 6))
    e.reset()
    assert e.current is None and e.samples == 0


def test_mapping_a_stamp_covers_its_microsecond_and_the_error():
    est = Estimate(offset_us=TRUE, error_us=10, samples=5)
    low, high = est.to_controller(10_000)
    assert (low, high) == (10_000 - TRUE - 10, 10_000 + 1 - TRUE + 10)
    assert est.to_switch(5500.4) == 10_000
