"""Which snapshot IDs may be in flight at once.

IDs are handed out in order.  A new ID may start only while it stays within
`span` of the oldest unfinished one, where span is the smallest of

* the parallelism k asked for,
* the SLBs' ring of epoch records (RING_SIZE): an SLB answers a resent INIT
  or a READ for an ID only while its record is still in the ring, and the
  record of ID n is overwritten by ID n + RING_SIZE; and an SLB learns an ID
  at most LEARN_WINDOW (RING_SIZE - 1) ahead of its own, so no more than
  that may separate the oldest unfinished ID from the newest;
* the serial-number window (ID_WINDOW): IDs further apart cannot be ordered.

The store keeps the unwrapped number (1, 2, 3, ... never reused); the wire
carries it modulo 2^32 (`wire_id`).
"""
from __future__ import annotations

from beaver.p4src.ids import ID_SPACE, ID_WINDOW
from beaver.p4src.wire import LEARN_WINDOW

MAX_SPAN = min(LEARN_WINDOW, ID_WINDOW)


def wire_id(number: int) -> int:
    return number % ID_SPACE


class IdWindow:
    """The numbers in flight, as ranges: a single snapshot is one number, a
    batch its whole range, started and finished at once."""

    def __init__(self, next_number: int, inflight: int):
        if inflight < 1:
            raise ValueError("at least one snapshot must be allowed in flight")
        self.next_number = next_number
        if inflight > MAX_SPAN:
            raise ValueError(f"{inflight} in flight could overwrite SLB records before they "
                             f"are read: at most {MAX_SPAN}")
        self.span = inflight
        self.open: dict[int, int] = {}   # first number -> count, oldest first (as started)
        self._count = 0

    def __len__(self) -> int:
        """Numbers in flight."""
        return self._count

    def can_start(self, count: int = 1) -> bool:
        """Whether count more numbers may start now (a batch starts whole)."""
        return self.next_number + count - 1 - self.oldest < self.span

    def start(self, count: int = 1) -> int:
        """The first of count new numbers."""
        if not self.can_start(count):
            raise RuntimeError(f"{count} from {self.next_number} would exceed the window of "
                               f"{self.span} from {self.oldest}")
        first = self.next_number
        self.open[first] = count
        self._count += count
        self.next_number += count
        return first

    def finish(self, first: int):
        """Numbers start in order, so the oldest open one is the first range
        still open (dicts keep their order)."""
        self._count -= self.open.pop(first)

    @property
    def oldest(self) -> int:
        """The oldest unfinished number, or the next if none is open: every
        number before it is finished."""
        return next(iter(self.open), self.next_number)

    @property
    def last_started(self) -> int:
        return self.next_number - 1
