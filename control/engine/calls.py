"""What the engine's parts (singles.py, batches.py, ingroup.py) call back: the
steps of a snapshot's life that the engine alone takes.  The parts take what
they read in their constructors and reach the engine only through this, so
none of them imports engine.py.
"""
from __future__ import annotations

from typing import Protocol

from beaver.control.engine.flight import BatchFlight, Flight
from beaver.control.engine.record import Verdict
from beaver.control.slbs.fleet import Slb


class EngineCalls(Protocol):
    newest_id: int   # the newest ID sent to the SLBs

    def started(self, first: int, count: int) -> None:
        """Snapshots first .. first+count-1 left for the SLBs."""

    def judged(self, flight: Flight) -> None:
        """Every SLB gave its final answer to a snapshot of its own."""

    def after_acks(self, flight: Flight) -> None:
        """Every SLB answered: finish, or ask the in-group processes first."""

    def late_init(self, flight: Flight, slb: str) -> None:
        """slb's INIT arrived after its activation time."""

    def fail(self, flight: Flight, reason: str) -> None: ...

    def finish(self, flight: Flight, verdict: Verdict) -> None: ...

    def finish_batch(self, flight: BatchFlight) -> None: ...

    def switch_down(self, slb: Slb) -> None:
        """slb's stream failed: the engine recovers it on its own thread."""

    def bring_forward(self, slb: Slb) -> None:
        """Moves slb at once past every snapshot that is over."""
