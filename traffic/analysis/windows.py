"""The paper's Fig. 13: how long the SLBs took to switch to a snapshot's ID,
as the controller can bound it and as the switches' own clocks tell it.

    coarse window   t1 - t0 on the controller's clock: every SLB switched
                    in between (first request sent, last answer back)
    switch spread   the latest SLB switch minus the earliest, each stamped on
                    its SLB's clock and mapped to the controller's (the
                    paper's e^ss_gmax.t - e^ss_gmin.t), with the interval the
                    clock estimates leave it in
    clock bound     the widest +- error of those estimates: the spread of a
                    timed snapshot cannot be told apart from zero below it

The coarse rule judges by the window; the fine rule by the switch times; so
the window's excess over the spread is what the fine rule saves.
"""
from __future__ import annotations

from dataclasses import dataclass

from beaver.control.engine.record import SnapshotRecord


@dataclass(frozen=True)
class Window:
    number: int
    window_us: int           # t1 - t0
    spread_us: float         # between the SLBs' mapped switch times (midpoints)
    spread_low_us: float     # the least spread the clock bounds allow
    spread_high_us: float    # the most
    clock_bound_us: float    # the widest +- clock error among the SLBs
    late_us: float | None    # timed: the latest switch after the activation time


def window(record: SnapshotRecord) -> Window | None:
    """None for a snapshot that not every SLB answered with its own record
    (no switch time to map) or with no clock estimate."""
    acks = list(record.acks.values())
    if (record.finished_us is None or len(acks) < len(record.slbs) or
            not all(a.exact and a.clock for a in acks)):
        return None
    mapped = [a.clock.to_controller(a.body.switch_time) for a in acks]
    mids = [(low + high) / 2 for low, high in mapped]
    lows, highs = [low for low, _ in mapped], [high for _, high in mapped]
    late = (max(mids) - record.activate_us) if record.activate_us is not None else None
    return Window(record.number, record.finished_us - record.started_us,
                  max(mids) - min(mids), max(0.0, max(lows) - min(highs)),
                  max(highs) - min(lows), max(a.clock.error_us for a in acks), late)
