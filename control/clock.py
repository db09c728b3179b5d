"""Each switch's data-plane clock, aligned to the controller's.

BMv2 stamps packets with microseconds since the switch started, so every
SLB has its own origin.  A round trip gives one sample: the switch read its
clock (`dp`) somewhere between the controller's send and receive, so its
offset (dp minus controller time) lies in [dp - received, dp - sent].
Intersecting the intervals of the lowest-delay samples bounds the offset;
the estimate is the middle of that interval and the error its half-width.
If the intervals do not meet (the clocks drifted, or a sample is wrong) the
single lowest-delay sample is used.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Iterable

from beaver.p4src.wire import Op

from .slb import Answer, RequestTimeout, SlbControl

BEST_SAMPLES = 8   # the lowest-delay samples an estimate intersects


@dataclass(frozen=True)
class Sample:
    sent_us: int       # controller clock
    dp_us: int         # the switch's clock, read in between
    received_us: int   # controller clock

    @property
    def delay_us(self) -> int:
        return self.received_us - self.sent_us

    @classmethod
    def of(cls, answer: Answer) -> "Sample":
        return cls(answer.sent_us, answer.body.now, answer.received_us)


@dataclass(frozen=True)
class Estimate:
    """offset_us = switch clock - controller clock, within +- error_us."""
    offset_us: float
    error_us: float
    samples: int

    @property
    def low_us(self) -> float:
        return self.offset_us - self.error_us

    @property
    def high_us(self) -> float:
        return self.offset_us + self.error_us

    def to_controller(self, dp_us: int) -> tuple[float, float]:
        """The interval of controller times that a switch time maps to."""
        return dp_us - self.high_us, dp_us - self.low_us


def estimate(samples: Iterable[Sample], best: int = BEST_SAMPLES) -> Estimate:
    chosen = heapq.nsmallest(best, samples, key=lambda s: s.delay_us)
    if not chosen:
        raise ValueError("no clock samples")
    low = max(s.dp_us - s.received_us for s in chosen)
    high = min(s.dp_us - s.sent_us for s in chosen)
    if low > high:
        first = chosen[0]
        low, high = first.dp_us - first.received_us, first.dp_us - first.sent_us
    return Estimate((low + high) / 2, (high - low) / 2, len(chosen))


class ClockTracker:
    """The lowest-delay samples of one switch's clock within a horizon.

    `refresh` re-estimates and forgets all but the best samples, so memory
    stays bounded however often the clock is measured.
    """

    def __init__(self, horizon_us: int = 120_000_000):
        self.horizon_us = horizon_us
        self.samples: list[Sample] = []
        self.current: Estimate | None = None

    def add(self, sample: Sample):
        self.samples.append(sample)

    def refresh(self) -> Estimate | None:
        if self.samples:
            newest = max(s.received_us for s in self.samples)
            recent = [s for s in self.samples if newest - s.received_us <= self.horizon_us]
            self.samples = heapq.nsmallest(BEST_SAMPLES, recent, key=lambda s: s.delay_us)
            self.current = estimate(self.samples)
        return self.current

    def reset(self):
        """The switch restarted: its clock has a new origin."""
        self.samples.clear()
        self.current = None


def measure(slb: SlbControl, tracker: ClockTracker, count: int = 16,
            timeout: float = 0.5) -> Estimate:
    """Sends `count` READs one at a time (unloaded samples) and re-estimates.
    Lost answers are skipped; RequestTimeout if none came back."""
    got = 0
    for _ in range(count):
        try:
            answer = slb.request(Op.READ, 0, timeout=timeout)
        except RequestTimeout:
            continue
        tracker.add(Sample.of(answer))
        got += 1
    if not got:
        raise RequestTimeout(f"{slb.name}: no answer to {count} clock probes")
    return tracker.refresh()

