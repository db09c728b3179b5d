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
    def __init__(self, next_number: int, inflight: int):
        if inflight < 1:
            raise ValueError("at least one snapshot must be allowed in flight")
        self.next_number = next_number
        if inflight > MAX_SPAN:
            raise ValueError(f"{inflight} in flight could overwrite SLB records before they "
                             f"are read: at most {MAX_SPAN}")
        self.span = inflight
        self.open: set[int] = set()
        self._oldest = next_number   # oldest unfinished, or next_number if none

    def __len__(self) -> int:
        return len(self.open)

    def can_start(self, count: int = 1) -> bool:
        """Whether count more IDs may start now (a batch starts whole)."""
        return self.next_number + count - 1 - self._oldest < self.span

    def start(self) -> int:
        if not self.can_start():
            raise RuntimeError(f"ID {self.next_number} would exceed the window of "
                               f"{self.span} from {self._oldest}")
        number = self.next_number
        self.open.add(number)
        self.next_number += 1
        return number

    def finish(self, number: int):
        self.open.remove(number)
        # Numbers start in order: the oldest open one is the first still open
        # after this one (amortized O(1), where min(open) costs the window).
        while self._oldest < self.next_number and self._oldest not in self.open:
            self._oldest += 1

    @property
    def oldest(self) -> int:
        """The oldest unfinished number, or the next if none is open: every
        number before it is finished."""
        return self._oldest

    @property
    def last_started(self) -> int:
        return self.next_number - 1
