"""control/clock.py on recorded round trips."""
import pytest

from beaver.control.clock import ClockTracker, Sample, estimate


def test_one_sample_bounds_the_offset_by_its_round_trip():
    e = estimate([Sample(sent_us=1000, dp_us=5600, received_us=1200)])
    assert (e.low_us, e.high_us) == (4400, 4600)
    assert (e.offset_us, e.error_us) == (4500, 100)
    assert e.to_controller(5600) == (1000, 1200), "the switch read its clock in between"


def test_intersecting_samples_narrows_the_bound():
    # true offset 4500; the switch reads its clock early in one trip, late in another
    early = Sample(1000, 1020 + 4500, 1400)
    late = Sample(2000, 2380 + 4500, 2400)
    e = estimate([early, late])
    assert (e.low_us, e.high_us) == (4480, 4520)
    assert e.error_us < min(s.delay_us for s in (early, late)) / 2


def test_only_the_lowest_delay_samples_count():
    good = [Sample(t, t + 50 + 4500, t + 100) for t in range(0, 8000, 1000)]
    queued = Sample(9000, 9000 + 20_000 + 4500, 9000 + 40_000)   # waited behind a burst
    e = estimate(good + [queued], best=8)
    assert e.samples == 8 and e.error_us == 50


def test_disjoint_intervals_fall_back_to_the_best_sample():
    a = Sample(0, 4500, 100)          # offset in [4400, 4500]
    b = Sample(1000, 1000 + 4800, 1200)  # [4600, 4800]: the clock jumped; no overlap
    e = estimate([a, b])
    assert (e.low_us, e.high_us) == (4400, 4500)


def test_no_samples_is_an_error():
    with pytest.raises(ValueError):
        estimate([])


def test_tracker_keeps_the_best_recent_samples_and_forgets_on_restart():
    tracker = ClockTracker(horizon_us=10_000)
    assert tracker.refresh() is None
    tracker.add(Sample(0, 4510, 20))           # excellent but old
    for t in range(20_000, 30_000, 1000):
        tracker.add(Sample(t, t + 100 + 9000, t + 200))   # the switch restarted: new offset
    e = tracker.refresh()
    assert (e.low_us, e.high_us) == (8900, 9100), "the old sample is past the horizon"
    assert len(tracker.samples) <= 8
    tracker.reset()
    assert tracker.current is None and not tracker.samples
