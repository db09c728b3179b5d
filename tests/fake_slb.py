"""A stand-in for one SLB's P4Runtime session: epoch.p4's control requests
modelled in Python, answered at once on the caller's thread.

For the engine's logic without BMv2: lost packet-ins, SLBs that jumped
ahead, traffic marked with old IDs at chosen times.  The BMv2 tests check
the same behaviour against the real data plane.
"""
from __future__ import annotations

from typing import Callable

from beaver.control.slb import SlbControl, now_us
from beaver.p4src import ids
from beaver.p4src.wire import FLAG_HOLD, FLAG_MARKING, RING_SIZE, ControlBody, Op, Status


class FakeSession:
    def __init__(self, name: str, slb_id: int = 1, clock_offset_us: int = 1_000_000):
        self.name = name
        self.slb_id = slb_id
        self.offset = clock_offset_us       # data-plane clock = controller clock + offset
        self.current = 0
        self.holding = False
        self.ring: dict[int, tuple[int, int, int, int]] = {}   # slot -> (id, switch, last_old, count)
        self.last_mark = 0
        self.connected = True
        self.is_primary = True
        self.requests: list[tuple[Op, int, int]] = []   # (op, snapshot ID, flags) as received
        # lose(op, snapshot_id) -> True drops the answer (the request still acts)
        self.lose: Callable[[Op, int], bool] = lambda op, snapshot_id: False
        self.on_packet_in = None

    def attach(self, control: SlbControl):
        self.on_packet_in = control.on_packet_in

    def now(self) -> int:
        return now_us() + self.offset

    def mark(self, at_dp_us: int | None = None):
        """A VIP packet marked with the current ID (at a chosen data-plane time)."""
        if self.holding:
            return
        self.last_mark = self.now() if at_dp_us is None else at_dp_us
        slot = self.current % RING_SIZE
        sid, switched, last_old, count = self.ring.get(slot, (self.current, 0, 0, 0))
        self.ring[slot] = (sid, switched, last_old, count + 1)

    def learn(self, snapshot_id: int):
        if ids.is_newer(snapshot_id, self.current):
            self._advance(snapshot_id)

    def _advance(self, snapshot_id: int):
        self.ring[snapshot_id % RING_SIZE] = (snapshot_id, self.now(), self.last_mark, 0)
        self.current = snapshot_id

    def packet_out(self, payload: bytes, opcode: int):
        request = ControlBody.unpack(payload)
        op, sid = Op(opcode), request.snapshot_id
        self.requests.append((op, sid, request.flags))
        before = self.current
        newer = ids.is_newer(sid, self.current)
        known = not newer and self.ring.get(sid % RING_SIZE, (None,))[0] == sid
        status = Status.OK
        if op == Op.INIT:
            if newer:
                self._advance(sid)
            elif known:
                status = Status.ALREADY
            else:
                status = Status.STALE
            if self.current == sid and request.flags & FLAG_HOLD:
                self.holding = True
        elif op == Op.READ:
            status = Status.OK if known else Status.STALE
        elif op == Op.RELEASE:
            self.holding = False
        described = sid if (known or self.current == sid) else self.current
        _, switched, last_old, count = self.ring.get(described % RING_SIZE, (0, 0, 0, 0))
        flags = (FLAG_HOLD if self.holding else 0) | FLAG_MARKING
        answer = ControlBody(request.seq, described, before, self.current, self.now(),
                             switched, last_old, count, self.slb_id, flags)
        if not self.lose(op, sid):
            self.on_packet_in(self, {"opcode": opcode, "status": int(status)}, answer.pack())

    def close(self):
        pass


def fake_gateways(controller) -> dict[str, FakeSession]:
    """Replaces every gateway's session of a (never connected) Controller by a fake."""
    fakes = {}
    for i, gw in enumerate(controller.gateways):
        fake = FakeSession(gw.name, gw.config.slb_id, clock_offset_us=(i + 1) * 1_000_000)
        gw.session = fake
        gw.control = SlbControl(fake)
        fake.attach(gw.control)
        fakes[gw.name] = fake
    return fakes
