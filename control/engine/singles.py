"""One snapshot's requests to every SLB, and their answers: INIT, then
under timed initiation a READ once the activation time has passed, and for
the blocking strawman a RELEASE.

Every round of requests has one deadline; an unanswered INIT or READ is
resent (an SLB answers a resent one with the same record) up to `retries`
times, then the snapshot is incomplete.  A late answer, a duplicate, one
for a phase already over or from a switch since restarted is dropped.
"""
from __future__ import annotations

import logging
from functools import partial
from typing import Mapping

from beaver.p4src.wire import Op, Status

from beaver.control.engine.calls import EngineCalls
from beaver.control.engine.flight import Flight
from beaver.control.engine.loop import Loop
from beaver.control.engine.record import Ack, Mode, Outcome, Verdict
from beaver.control.engine.settings import RunSettings
from beaver.control.engine.timing import Timing
from beaver.control.p4runtime.session import SwitchUnavailable
from beaver.control.slbs import clock
from beaver.control.slbs.fleet import Slb
from beaver.control.slbs.requests import Answer, now_us

log = logging.getLogger(__name__)

ANSWER = "answer"
READ_AFTER_US = 100        # a READ leaves this long after the latest activation could be
FINAL = (Status.OK, Status.ALREADY, Status.STALE, Status.SCHEDULED)   # answers that count


class Singles:
    def __init__(self, engine: EngineCalls, loop: Loop, settings: RunSettings, timing: Timing,
                 by_name: Mapping[str, Slb]):
        self.engine = engine
        self.loop = loop
        self.settings = settings
        self.timing = timing
        self.by_name = by_name

    # -- sending --------------------------------------------------------------

    def send_round(self, flight: Flight, op: Op, flags: int = 0):
        """Sends op to every SLB still waiting, with one deadline for them all;
        the first INIT of an SLB with a delay leaves late."""
        flight.phase = op
        flight.round += 1
        late = op is Op.INIT and flight.round == 1
        for name in sorted(flight.waiting):
            send = partial(self.send, flight, self.by_name[name], op, flags)
            if late:
                self.loop.later(name, send)
            else:
                send()
        delay = self.loop.most_delay(flight.waiting) if late else 0
        self.loop.at(now_us() + delay + int(self.settings.ack_timeout_ms * 1000),
                     partial(self.overdue, flight, op, flags, flight.round))

    def send(self, flight: Flight, gw: Slb, op: Op, flags: int = 0):
        activate_at = 0
        if op is Op.INIT and flight.record.activate_us is not None:
            estimate = gw.clock.current
            if estimate is None:   # cannot happen after align_clocks; judged as it is
                log.warning("%s has no clock estimate: snapshot %d initiated at once",
                            gw.name, flight.record.number)
            else:
                activate_at = estimate.to_switch(flight.record.activate_us)
        try:
            pending = gw.control.send(op, flight.record.snapshot_id, flags,
                                      partial(self._answered, flight, gw, gw.incarnation),
                                      activate_at)
        except SwitchUnavailable:
            return self.engine.switch_down(gw)
        flight.pending.append(pending)

    def _answered(self, flight: Flight, gw: Slb, incarnation: int, answer: Answer):
        """On the session's receive thread: the clock estimate in force now
        is the one this answer is read by (the engine may see it only after
        the switch restarted and the estimate began again)."""
        estimate = gw.clock.current
        if gw.clock.source == clock.PACKET_OUT:
            gw.clock.add(clock.Sample.of(answer))
        self.loop.put((ANSWER, flight, gw, incarnation, answer, estimate))

    # -- answers ----------------------------------------------------------------

    def on_answer(self, flight: Flight, gw: Slb, incarnation: int, answer: Answer,
                  estimate: clock.Estimate | None):
        if (flight.done or answer.op != flight.phase or gw.name not in flight.waiting
                or incarnation != gw.incarnation):
            return   # late, duplicate, for a phase already over, or from a switch since gone
        self.timing.observe(answer.rtt_us)
        if answer.op == Op.RELEASE:
            flight.waiting.discard(gw.name)
            if not flight.waiting:
                self.engine.after_acks(flight)
            return
        if answer.status is Status.SCHEDULED and answer.op is Op.READ:
            # read before the switch's time (the estimate erred early): again soon
            return self.loop.at(now_us() + READ_AFTER_US,
                                partial(self.send, flight, gw, Op.READ))
        self.acknowledged(flight, Ack(gw.name, answer.status, answer.body, answer.sent_us,
                                      answer.received_us, flight.round, estimate), answer.op)

    def acknowledged(self, flight: Flight, ack: Ack, op: Op):
        """One SLB's final answer for flight: judged once every SLB gave one."""
        record = flight.record
        flight.waiting.discard(ack.slb)
        record.acks[ack.slb] = ack
        if ack.status not in FINAL or (ack.status is Status.SCHEDULED and
                                       record.activate_us is None):
            return self.engine.fail(flight, f"{ack.slb} answered {ack.status.name}")
        if (op is Op.INIT and ack.status is Status.OK and ack.body.activate_at
                and ack.body.switch_time > ack.body.activate_at):
            self.engine.late_init(flight, ack.slb)
        if record.mode is Mode.BLOCKING and not ack.body.holding:
            return self.engine.fail(flight, f"{ack.slb} did not hold traffic "
                                            f"({ack.status.name}, ID {ack.body.id_after})")
        if flight.waiting:
            return
        scheduled = {a.slb: a for a in record.acks.values() if a.status is Status.SCHEDULED}
        if scheduled:
            return self._read_after_activation(flight, scheduled)
        record.finished_us = max(a.received_us for a in record.acks.values())
        self.engine.judged(flight)

    def _read_after_activation(self, flight: Flight, scheduled: dict[str, Ack]):
        """Every SLB scheduled the ID: READ each once its time has surely
        passed on the controller's clock, for the record the rules judge."""
        latest = max(a.clock.to_controller(a.body.activate_at)[1] if a.clock else now_us()
                     for a in scheduled.values())
        flight.phase = Op.READ
        flight.waiting = set(scheduled)
        flight.round = 0
        self.loop.at(int(latest) + READ_AFTER_US, partial(self.send_round, flight, Op.READ))

    def overdue(self, flight: Flight, op: Op, flags: int, round_: int):
        if flight.done or flight.phase != op or flight.round != round_ or not flight.waiting:
            return
        if round_ <= self.settings.retries:
            return self.send_round(flight, op, flags)
        silent = ", ".join(sorted(flight.waiting))
        waited = f"within {self.settings.ack_timeout_ms:g} ms ({round_} attempts)"
        if op == Op.RELEASE:
            log.warning("%s did not confirm RELEASE of snapshot %d: may still hold VIP "
                        "traffic", silent, flight.record.number)
            flight.waiting.clear()
            flight.verdict = Verdict(Outcome.INCOMPLETE,
                                     f"{silent} did not confirm the release {waited}")
            self.engine.after_acks(flight)
        else:
            self.engine.fail(flight, f"no acknowledgement from {silent} {waited}")

    def release(self, flight: Flight):
        """Blocking: every SLB is sent a RELEASE, whatever happened."""
        flight.waiting = set(self.by_name)
        flight.round = 0
        self.send_round(flight, Op.RELEASE)
