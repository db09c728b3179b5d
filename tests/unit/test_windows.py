"""Fig. 13's measures of one snapshot (traffic/analysis/windows.py), on
answers whose times are known: two SLBs whose clocks run 1 ms ahead and
0.5 ms behind the controller's, switching 40 us apart."""
import pytest

from beaver.control.engine.record import Ack, Mode, SnapshotRecord
from beaver.control.slbs.clock import TICK_US, Estimate
from beaver.p4src.wire import ControlBody, Status
from beaver.traffic.analysis.windows import window

AHEAD, BEHIND = Estimate(1000, 5, 100), Estimate(-500, 10, 100)


def record(status=Status.OK, clock=BEHIND, activate_us=None) -> SnapshotRecord:
    r = SnapshotRecord(7, Mode.OGM, "fine", 100, ["s1", "s2"], started_us=10_000,
                       wall_time=0.0, finished_us=10_300, activate_us=activate_us)
    # s1 switched at 10,100 and s2 at 10,140 on the controller's clock
    r.acks["s1"] = Ack("s1", Status.OK, ControlBody(switch_time=11_100), 10_000, 10_250, 1, AHEAD)
    r.acks["s2"] = Ack("s2", status, ControlBody(switch_time=9_640), 10_000, 10_300, 1, clock)
    return r


def test_the_window_the_spread_and_its_bounds():
    w = window(record())
    assert w.window_us == 300
    assert w.spread_us == pytest.approx(40)
    # s1 maps to [10,095, 10,105 + TICK], s2 to [10,130, 10,150 + TICK]
    assert w.spread_low_us == pytest.approx(10_130 - (10_105 + TICK_US))
    assert w.spread_high_us == pytest.approx(10_150 + TICK_US - 10_095)
    assert w.clock_bound_us == 10
    assert w.late_us is None


def test_timed_snapshots_say_how_late_the_last_slb_switched():
    assert window(record(activate_us=10_100)).late_us == pytest.approx(40 + TICK_US / 2)


def test_the_spread_is_zero_at_least_when_the_clock_bounds_overlap():
    same = Estimate(-500, 40, 100)   # s2's bound now covers s1's switch
    assert window(record(clock=same)).spread_low_us == 0


@pytest.mark.parametrize("status, clock", [(Status.STALE, BEHIND), (Status.OK, None)],
                         ids=["passed the ID without recording it", "no clock estimate"])
def test_a_snapshot_without_every_switch_time_is_not_measured(status, clock):
    assert window(record(status=status, clock=clock)) is None
