"""When timed snapshots activate: the lead, from the measured tail of the
round trips, and the spacing, from the rate.

Every SLB is told one moment, `lead` ahead, so it switches within its clock
error of the others however late the INIT travels; an INIT that arrives
after its moment costs the snapshot.  Snapshots are pipelined, so a longer
lead costs latency, not rate, until the window fills: the lead covers the
tail (LEAD_QUANTILE) of the round trips measured lately, twice over (an
INIT that came late shows there as soon as its answer does).  The tail, not
the slowest: one stall (another process on the core) once set the lead to
70 ms for the next thousand round trips, and a window that turns over once
per lead then carried a sixth of the rate.  "Lately" spans runs: the round trips are the
controller's, so a run's first snapshots have the tail its last run saw, not
only the unloaded clock measurements.  And the round trips under way count
as soon as they are sent: a request unanswered for X means a round trip of
at least X now, before its answer can say so (a run's first batches under
load were late by the time the tail learned it).  At a rate it stops short
of holding more snapshots in flight than the window allows.
"""
from __future__ import annotations

import collections
from typing import Callable

from beaver.control.engine.settings import RunSettings
from beaver.control.slbs.requests import now_us

LEAD_FLOOR_US = 1_000      # the least lead time
LEAD_RTTS = 2.0            # the lead: this many times the tail of the recent round trips
LEAD_QUANTILE = 0.999      # the tail: the round trip that this share of them beat
RECENT_RTTS = 4096         # round trips the lead looks back on
TAIL_EVERY = 64            # the tail is sorted anew after this many new round trips
WINDOW_SHARE = 0.8         # at a rate, the lead holds at most this share of the window


def round_trips() -> collections.deque[int]:
    """Where a controller keeps the round trips its runs observe."""
    return collections.deque(maxlen=RECENT_RTTS)


class Timing:
    def __init__(self, settings: RunSettings, rtts: collections.deque[int],
                 waiting: Callable[[], int] = lambda: 0):
        self.settings = settings
        self._rtts = rtts
        self._waiting = waiting     # how long the oldest unanswered request has waited
        self._last_activation = 0   # the latest activation time handed out
        self.leads: list[int] = []  # the least and the most lead used
        self._sorted: list[int] | None = None   # the recent round trips, until TAIL_EVERY
        self._fresh = 0                          # more came

    def observe(self, rtt_us: int):
        self._rtts.append(rtt_us)
        self._fresh += 1
        if self._fresh >= TAIL_EVERY:
            self._sorted = None

    def _recent(self) -> list[int]:
        """The recent round trips in order, sorted once per TAIL_EVERY new
        ones, not per batch."""
        if self._sorted is None or len(self._sorted) > len(self._rtts):   # or cleared
            self._sorted = sorted(self._rtts)
            self._fresh = 0
        return self._sorted

    def tail_us(self) -> int:
        """The LEAD_QUANTILE of the recent round trips (0 if none yet)."""
        recent = self._recent()
        return recent[int(LEAD_QUANTILE * (len(recent) - 1))] if recent else 0

    def slowest_us(self) -> int:
        """The slowest recent round trip (0 if none yet)."""
        recent = self._recent()
        return recent[-1] if recent else 0

    def lead_us(self) -> int:
        s = self.settings
        if s.lead_us:
            return s.lead_us
        lead = max(LEAD_FLOOR_US, int(LEAD_RTTS * max(self.tail_us(), self._waiting())))
        if s.rate:
            lead = min(lead, max(LEAD_FLOOR_US, int(WINDOW_SHARE * s.inflight / s.rate * 1e6)))
        return lead

    def spacing_us(self) -> int:
        """IDs activate in order: never schedule one before the one before it."""
        return int(1e6 / self.settings.rate) if self.settings.rate else 1

    def activation(self, count: int) -> int:
        """The activation time of the first of count IDs about to start,
        spacing apart; the last is remembered for the next."""
        now = now_us()
        first = max(now + self.lead_us(), self._last_activation + self.spacing_us())
        self._last_activation = first + (count - 1) * self.spacing_us()
        # The lead the ID had: more than lead_us() when the rate's spacing,
        # after a run fell behind, puts its time later.
        self.leads = [min(self.leads + [first - now]), max(self.leads + [first - now])]
        return first

    def deadline_us(self) -> int:
        """How long to wait for an answer: the configured time, or longer
        while the switches answer slower (an early resend only adds to
        their queue)."""
        return max(int(self.settings.ack_timeout_ms * 1000), 2 * self.slowest_us())
