"""Each switch's data-plane clock, aligned to the controller's.

BMv2 stamps packets with microseconds since the switch started, on the
system clock, which is the controller's clock too (slb.now_us): so a
switch's offset (its clock minus the controller's) is a constant until the
switch restarts, and every sample ever taken bounds the same number.

A sample is a round trip whose switch-side stamps were taken in between:
the first stamp after the controller sent, the last before it received.
So the offset lies in [last - received, first - sent], widened by a
microsecond each way because both clocks count whole microseconds.  Two
sources give samples:

* clock probes on a probe port (probe.py): stamped on ingress and egress,
  and timed by the kernel on receipt, so what the switch spent queueing in
  between costs nothing (about +-10 us);
* packet-out/packet-in round trips (`measure`), for switches without a
  probe port: one stamp, and the whole round trip through the P4Runtime
  server as error (+-100 us and more under load).

`ClockEstimate` intersects every sample since it was last reset.  Samples
whose intervals do not meet the intersection mean the origin moved (a
restarted switch) or a sample was wrong: the estimate starts again from the
new sample, and says why in the log; it never keeps a bound that a sample
contradicts, and it offers none (so the fine rule rejects) until
SETTLE_SAMPLES samples agree again, lest the wrong one be the new one.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from beaver.p4src.wire import Op

from beaver.control.slbs.requests import Answer, RequestTimeout, SlbRequests

log = logging.getLogger(__name__)

TICK_US = 1          # both clocks truncate to whole microseconds
SETTLE_SAMPLES = 8   # after a contradiction, samples that must agree before an estimate
PROBE, PACKET_OUT = "probe", "packet-out"


@dataclass(frozen=True)
class Sample:
    sent_us: int         # controller clock
    first_dp_us: int     # the switch's clock, read after the send
    last_dp_us: int      # the switch's clock, read before the receipt
    received_us: int     # controller clock

    @property
    def delay_us(self) -> int:
        return self.received_us - self.sent_us

    @property
    def low_us(self) -> int:
        return self.last_dp_us - self.received_us - TICK_US

    @property
    def high_us(self) -> int:
        return self.first_dp_us - self.sent_us + TICK_US

    @classmethod
    def of(cls, answer: Answer) -> "Sample":
        return cls(answer.sent_us, answer.body.now, answer.body.now, answer.received_us)


@dataclass(frozen=True)
class Estimate:
    """offset_us = switch clock - controller clock, within +- error_us."""
    offset_us: float
    error_us: float
    samples: int
    source: str = PACKET_OUT

    @property
    def low_us(self) -> float:
        return self.offset_us - self.error_us

    @property
    def high_us(self) -> float:
        return self.offset_us + self.error_us

    def to_controller(self, dp_us: int) -> tuple[float, float]:
        """The controller times that a switch stamp can stand for (the
        event happened within the stamp's microsecond)."""
        return dp_us - self.high_us, dp_us + TICK_US - self.low_us

    def to_switch(self, controller_us: float) -> int:
        """The switch stamp closest to a controller time (for scheduling)."""
        return int(round(controller_us + self.offset_us))


class ClockEstimate:
    """The intersection of one switch's samples since its last reset.
    Thread-safe: probes add samples from their own thread."""

    def __init__(self, name: str, source: str):
        self.name = name
        self.source = source
        self._lock = threading.Lock()
        self._low = self._high = None
        self._samples = 0
        self._settling = False
        self.resets = 0          # contradictions seen (restarts, bad samples)
        self.current: Estimate | None = None

    def add(self, sample: Sample):
        low, high = sample.low_us, sample.high_us
        with self._lock:
            if self._low is not None and (low > self._high or high < self._low):
                log.warning("%s: clock sample [%d, %d] us contradicts the estimate [%d, %d] "
                            "of %d samples (the switch restarted, or a sample was wrong): "
                            "starting again", self.name, low, high, self._low, self._high,
                            self._samples)
                self.resets += 1
                self._low = None
                self._settling = True
            if self._low is None:
                self._low, self._high, self._samples = low, high, 0
            self._low, self._high = max(self._low, low), min(self._high, high)
            self._samples += 1
            self._settling = self._settling and self._samples < SETTLE_SAMPLES
            self.current = None if self._settling else Estimate(
                (self._low + self._high) / 2, (self._high - self._low) / 2, self._samples,
                self.source)

    @property
    def samples(self) -> int:
        return self._samples if self._low is not None else 0

    def reset(self):
        """The switch restarted: its clock has a new origin."""
        with self._lock:
            self._low = None
            self._samples = 0
            self.current = None


def measure(slb: SlbRequests, count: int = 16, timeout: float = 0.5) -> list[Answer]:
    """Sends `count` READs one at a time (unloaded round trips).  Lost
    answers are skipped; RequestTimeout if none came back."""
    answers = []
    for _ in range(count):
        try:
            answers.append(slb.request(Op.READ, 0, timeout=timeout))
        except RequestTimeout:
            continue
    if not answers:
        raise RequestTimeout(f"{slb.name}: no answer to {count} clock probes")
    return answers
