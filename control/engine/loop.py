"""The engine's one thread of decisions: events from other threads, and
timers.

The switches' receive threads and the process links only put events on the
queue; everything that decides runs here, between two waits, so no lock
guards the engine's state.
"""
from __future__ import annotations

import heapq
import itertools
import queue
from typing import Callable

from beaver.control.slbs.requests import now_us

Action = Callable[[], None]


class Loop:
    def __init__(self, delays_us: dict[str, int]):
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self._timers: list = []
        self._tick = itertools.count()
        self._delays_us = delays_us

    def put(self, event: tuple):
        """From any thread."""
        self.events.put(event)

    def at(self, when_us: int, action: Action):
        heapq.heappush(self._timers, (when_us, next(self._tick), action))

    def later(self, name: str, action: Action):
        """Runs action now, or after name's initiation delay (an experiment's
        late SLB or process)."""
        delay = self._delays_us.get(name, 0)
        if delay:
            self.at(now_us() + delay, action)
        else:
            action()

    def most_delay(self, names) -> int:
        return max((self._delays_us.get(n, 0) for n in names), default=0)

    def wait(self, handle: Callable[[tuple], None], *deadlines_us: int | None):
        """Handles the events of the next moment: blocks until one arrives, a
        timer is due or a deadline passes (at most 0.5 s); then drains the
        queue and runs the timers that are due."""
        until = [t for t in (*deadlines_us, self._timers[0][0] if self._timers else None)
                 if t is not None]
        timeout = max(0.0, (min(until) - now_us()) / 1e6) if until else 0.5
        try:
            event = self.events.get(timeout=min(timeout, 0.5))
        except queue.Empty:
            event = None
        while event is not None:
            handle(event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                event = None
        now = now_us()
        while self._timers and self._timers[0][0] <= now:
            _, _, action = heapq.heappop(self._timers)
            action()
