"""Beaver control requests to one SLB, over its P4Runtime packet-out/packet-in.

BMv2's P4Runtime server cannot read or write registers, so the epoch
registers are reached through the data plane: a packet-out carries a control
body (p4src/wire.py), the switch answers with a packet-in carrying it back
filled in.  Answers are matched to requests by sequence number; every request
has a timeout because packet-ins can be lost.
"""
from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Mapping

from beaver.p4src.wire import BATCHED, Batch, ControlBody, Op, Record, Status, WireError

if TYPE_CHECKING:   # not at run time: the store reads clocks from here, without gRPC
    from beaver.control.p4runtime.session import SwitchSession


def now_us() -> int:
    """The controller's clock: the system clock, in microseconds.  BMv2 stamps
    packets on the same clock (std::chrono::high_resolution_clock is the
    system clock in libstdc++) from its own origin, so on one host a switch's
    clock is the controller's plus a constant, whatever the clock does."""
    return time.time_ns() // 1000


_NO_TIME = bytes(6)   # a 48-bit time field, zero in a request


def _request(seq: int, snapshot_id: int, flags: int, activate_at: int = 0) -> bytes:
    """ControlBody(seq=..., snapshot_id=..., flags=..., activate_at=...).pack(),
    without building the dataclass: this runs for every request of a run."""
    return ControlBody.FORMAT.pack(seq, snapshot_id, 0, 0, _NO_TIME, _NO_TIME, _NO_TIME,
                                   0, 0, flags, activate_at.to_bytes(6, "big"))


class RequestTimeout(Exception):
    """No answer from the SLB within the timeout (lost packet-out or packet-in)."""


@dataclass(frozen=True)
class Answer:
    op: Op
    status: Status
    body: ControlBody
    sent_us: int        # controller clock when the request left
    received_us: int    # controller clock when the answer arrived
    batch: Batch | None = None         # a batched request's batch header, as answered
    records: tuple[Record, ...] = ()   # READ_RECORDS: one per ID asked for, in order

    @property
    def rtt_us(self) -> int:
        return self.received_us - self.sent_us


class Pending:
    """An answer to come: either waited for, or handed to `callback` on the
    session's receive thread (no Event then: the hot path of a snapshot run)."""

    __slots__ = ("slb", "op", "seq", "sent_us", "_callback", "_done", "_answer")

    def __init__(self, slb: "SlbRequests", op: Op, seq: int,
                 callback: Callable[[Answer], None] | None):
        self.slb = slb
        self.op = op
        self.seq = seq
        self.sent_us = 0
        self._callback = callback
        self._done = threading.Event() if callback is None else None
        self._answer: Answer | None = None

    def _complete(self, answer: Answer):
        self._answer = answer
        if self._callback is not None:
            self._callback(answer)
        else:
            self._done.set()

    def wait(self, timeout: float) -> Answer:
        if self._done is None:
            raise TypeError("the answer to this request goes to its callback")
        if not self._done.wait(timeout):
            self.slb._forget(self.seq)
            raise RequestTimeout(f"{self.slb.name}: no answer to {self.op.name} "
                                 f"(seq {self.seq}) within {timeout * 1000:.0f} ms")
        return self._answer

    def cancel(self):
        self.slb._forget(self.seq)


class SlbRequests:
    """The Beaver requests (INIT, READ, RELEASE) to one SLB."""

    def __init__(self, session: SwitchSession):
        self.session = session
        self._seq = itertools.count(1)
        self._pending: dict[int, Pending] = {}
        self._lock = threading.Lock()
        self.unmatched = 0   # answers nobody waited for (late, truncated, duplicated)

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def outstanding(self) -> int:
        """Requests sent and neither answered nor forgotten."""
        return len(self._pending)

    def waiting_us(self, now: int) -> int:
        """How long the oldest unanswered request has waited (0: none): a
        round trip at least that long is under way now."""
        with self._lock:
            oldest = next(iter(self._pending.values()), None)
        return now - oldest.sent_us if oldest is not None and oldest.sent_us else 0

    def send(self, op: Op, snapshot_id: int = 0, flags: int = 0,
             callback: Callable[[Answer], None] | None = None,
             activate_at: int = 0, batch: bytes = b"") -> Pending:
        seq = next(self._seq) & 0xFFFFFFFF
        pending = Pending(self, op, seq, callback)
        with self._lock:
            self._pending[seq] = pending
        body = _request(seq, snapshot_id, flags, activate_at) + batch
        pending.sent_us = now_us()
        try:
            self.session.packet_out(body, opcode=int(op))
        except Exception:
            self._forget(seq)
            raise
        return pending

    def send_batch(self, op: Op, first_id: int, batch: Batch,
                   callback: Callable[[Answer], None] | None = None,
                   activate_at: int = 0) -> Pending:
        """INIT_BATCH (batch: a schedule from first_id, its first ID due at
        activate_at), READ_BATCH (the schedule that starts at first_id) or
        READ_RECORDS (batch.count records, in the room the request brings)."""
        room = bytes(batch.count * Record.SIZE) if op is Op.READ_RECORDS else b""
        return self.send(op, first_id, 0, callback, activate_at, batch.pack() + room)

    def request(self, op: Op, snapshot_id: int = 0, flags: int = 0,
                timeout: float = 0.5, activate_at: int = 0) -> Answer:
        return self.send(op, snapshot_id, flags, activate_at=activate_at).wait(timeout)

    def request_batch(self, op: Op, first_id: int, batch: Batch, timeout: float = 0.5,
                      activate_at: int = 0) -> Answer:
        return self.send_batch(op, first_id, batch, None, activate_at).wait(timeout)

    def on_packet_in(self, session: SwitchSession, metadata: Mapping[str, int],
                     payload: bytes):
        """The session's packet-in handler: completes the matching request."""
        received = now_us()
        try:
            body = ControlBody.unpack(payload)
            status = Status(metadata.get("status", -1))
        except (WireError, ValueError):
            self.unmatched += 1
            return
        with self._lock:
            pending = self._pending.pop(body.seq, None)
        if pending is None:
            self.unmatched += 1
            return
        batch, records = None, ()
        if pending.op in BATCHED:
            try:
                batch = Batch.unpack(payload[ControlBody.SIZE:])
            except WireError:
                pass   # a truncated request's answer (status TRUNCATED) carries none
        if pending.op is Op.READ_RECORDS and status is Status.OK:
            records = tuple(Record.unpack_all(payload[ControlBody.SIZE + Batch.SIZE:]))
        pending._complete(Answer(pending.op, status, body, pending.sent_us, received, batch,
                                 records))

    def fail_all(self) -> int:
        """Forgets every outstanding request (the switch went away)."""
        with self._lock:
            count = len(self._pending)
            self._pending.clear()
        return count

    def _forget(self, seq: int):
        with self._lock:
            self._pending.pop(seq, None)
