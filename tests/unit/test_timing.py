"""control/engine/timing.py: the lead covers the tail of the recent round
trips, not one stall, and never holds more than the window at a rate."""
from beaver.control.engine.settings import RunSettings
from beaver.control.engine.timing import (LEAD_FLOOR_US, LEAD_RTTS, RECENT_RTTS, TAIL_EVERY,
                                          Timing, round_trips)


def timing_with(rtts, **settings):
    timing = Timing(RunSettings(**settings), round_trips())
    for rtt in rtts:
        timing.observe(rtt)
    return timing


def test_one_stall_does_not_set_the_lead_but_its_deadline():
    timing = timing_with([1_000] * 3000 + [70_000])
    assert timing.lead_us() == LEAD_RTTS * 1_000
    assert timing.deadline_us() == 2 * 70_000     # an answer may still take that long


def test_a_tail_that_the_load_keeps_producing_sets_the_lead():
    timing = timing_with([1_000] * 3000 + [20_000] * 10)   # 1 in 300, over the 1 in 1,000
    assert timing.lead_us() == LEAD_RTTS * 20_000


def test_the_lead_follows_newer_round_trips_and_forgets_old_ones():
    timing = timing_with([30_000] * RECENT_RTTS)
    assert timing.lead_us() == LEAD_RTTS * 30_000
    for _ in range(RECENT_RTTS):
        timing.observe(2_000)
    assert timing.lead_us() == LEAD_RTTS * 2_000
    timing.observe(900)   # fewer than TAIL_EVERY new ones: the tail as sorted last
    assert timing.lead_us() == LEAD_RTTS * 2_000 and TAIL_EVERY > 1


def test_a_floor_and_a_cap_at_a_rate():
    assert timing_with([10] * 100).lead_us() == LEAD_FLOOR_US
    assert timing_with([]).lead_us() == LEAD_FLOOR_US
    # 8,191 in flight at 131,072/s: the lead holds at most 0.8 of the window's 62.5 ms
    capped = timing_with([200_000] * 100, rate=131_072, inflight=8191, batch=1)
    assert capped.lead_us() == int(0.8 * 8191 / 131_072 * 1e6)


def test_a_cleared_history_is_not_read_stale():
    rtts = round_trips()
    timing = Timing(RunSettings(), rtts)
    for _ in range(100):
        timing.observe(50_000)
    assert timing.lead_us() == LEAD_RTTS * 50_000
    rtts.clear()
    timing.observe(1_000)
    assert timing.lead_us() == LEAD_RTTS * 1_000


def test_a_request_still_unanswered_lengthens_the_lead_before_its_answer_comes():
    rtts = round_trips()
    waiting = [0]
    timing = Timing(RunSettings(), rtts, lambda: waiting[0])
    for _ in range(100):
        timing.observe(2_000)
    assert timing.lead_us() == LEAD_RTTS * 2_000
    waiting[0] = 30_000          # an INIT sent 30 ms ago, not answered yet
    assert timing.lead_us() == LEAD_RTTS * 30_000
    waiting[0] = 500             # shorter than the tail: the tail rules
    assert timing.lead_us() == LEAD_RTTS * 2_000


def test_the_steady_rate_leaves_out_the_start_and_the_drain():
    from beaver.control.engine.settings import RunSummary
    summary = RunSummary()
    summary.saved = [(0, 100)] + [(1_000_000 + 10_000 * i, 1000) for i in range(100)] + \
        [(5_000_000, 100)]   # a slow first and last commit
    assert summary.steady_rate() == (89_000 - 10_000) / ((89 - 10) * 10_000 / 1e6)
    assert RunSummary().steady_rate() is None


def test_the_lead_reported_is_the_one_each_id_had_spacing_included():
    """A run that fell behind its rate schedules the next ID a spacing after
    the last, which is a longer lead than asked: the summary says so."""
    timing = timing_with([], rate=5, lead_us=3_000)   # a spacing of 200 ms
    timing.activation(1)
    timing.activation(1)   # at once, as a run catching up starts its next
    low, high = timing.leads
    assert low == 3_000 and 190_000 < high <= 203_000   # the last ID's 3 ms, then 200 ms
