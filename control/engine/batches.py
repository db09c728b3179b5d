"""A batch's requests to every SLB, and their answers: consecutive snapshots
under one schedule per SLB (timed OGM with batch > 1).

    INIT_BATCH    the schedule: count IDs from the first, spacing apart
    READ_BATCH    once the last time has passed: the schedule as the SLB
                  holds it, and its lateness
    judge         by the schedules (rules.by_schedule): one verdict for
                  every ID they clear
    READ_RECORDS  only for the IDs they leave unclear (a late SLB's first
                  ones): each ID's records, judged on its own as a Flight

A batch is a transport and a shared verdict, never a shortcut: every
snapshot gets a verdict that the fine rule would give it on bounds of its
own records, and the store keeps the batch as a range.  Each phase has one
deadline and is resent up to `retries` times; resending is harmless (an
INIT_BATCH goes again with the same times, so the SLB keeps the schedule and
tracking it holds, and answers READs as before).  An SLB that goes down
fails every batch not yet judged: the recovery moves it at once to the
newest ID started, ahead of its schedules' times.
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from functools import partial
from typing import Mapping

from beaver.p4src.wire import RECORDS_MAX, Batch, ControlBody, Op, Record, Status

from beaver.control.engine.calls import EngineCalls
from beaver.control.engine.flight import BatchFlight, Flight
from beaver.control.engine.ingroup import Reports
from beaver.control.engine.judging import judge_batch
from beaver.control.engine.loop import Loop
from beaver.control.engine.record import (Ack, BatchRecord, Mode, Outcome, SnapshotRecord,
                                          ScheduleAck, Verdict)
from beaver.control.engine.settings import RunSettings, RunSummary
from beaver.control.engine.singles import READ_AFTER_US, Singles
from beaver.control.engine.timing import Timing
from beaver.control.engine.window import wire_id
from beaver.control.p4runtime.session import SwitchUnavailable
from beaver.control.slbs import clock
from beaver.control.slbs.fleet import Slb
from beaver.control.slbs.requests import Answer, now_us

log = logging.getLogger(__name__)

BATCH = "batch"
QUEUED_AT_SLB = 4   # a new batch waits while an SLB has this many requests unanswered


class Batches:
    def __init__(self, engine: EngineCalls, loop: Loop, settings: RunSettings, timing: Timing,
                 by_name: Mapping[str, Slb], summary: RunSummary, singles: Singles,
                 reports: Reports):
        self.engine = engine
        self.loop = loop
        self.settings = settings
        self.timing = timing
        self.by_name = by_name
        self.summary = summary
        self.singles = singles
        self.reports = reports
        self.flights: dict[int, BatchFlight] = {}   # by first number

    # -- starting ---------------------------------------------------------------

    def start(self, first: int, count: int, retakes_left: int):
        """Snapshots first .. first+count-1, numbered and reserved by the engine."""
        s = self.settings
        record = BatchRecord(first, count, Mode.OGM, s.rule, s.tau_us, list(self.by_name),
                             now_us(), time.time(), self.timing.activation(count),
                             self.timing.spacing_us())
        flight = BatchFlight(record, retakes_left)
        self.engine.started(first, count)
        self.flights[first] = flight
        self.send_round(flight)
        record.started_us = min((p.sent_us for p in flight.pending), default=record.started_us)

    def send_round(self, flight: BatchFlight):
        """The phase's request to every SLB still waiting, one deadline for
        them all; the first INIT_BATCH of an SLB with a delay leaves late."""
        if flight.round == 0:
            flight.waiting = set(self.by_name)
        late = flight.phase is Op.INIT_BATCH and flight.round == 0
        flight.round += 1
        for name in sorted(flight.waiting):
            send = partial(self.send, flight, self.by_name[name])
            if late:
                self.loop.later(name, send)
            else:
                send()
        delay = self.loop.most_delay(flight.waiting) if late else 0
        self.loop.at(now_us() + delay + self.timing.deadline_us(),
                     partial(self.overdue, flight, flight.phase, flight.round))

    def send(self, flight: BatchFlight, gw: Slb):
        record = flight.record
        if flight.phase is Op.INIT_BATCH:
            self._send(flight, gw, Op.INIT_BATCH, record.first,
                       Batch.schedule(record.count, record.spacing_us), self._first_at(flight, gw))
        else:
            self._send(flight, gw, Op.READ_BATCH, record.first, Batch(record.count))

    @staticmethod
    def _first_at(flight: BatchFlight, gw: Slb) -> int:
        """The schedule's first time on gw's clock, the same in every resend:
        a changed one would replace a schedule the SLB already followed in
        part, and its records would then be judged by the new times.  0
        (BAD_BATCH) only before align_clocks."""
        if gw.name not in flight.at:
            estimate = gw.clock.current
            if estimate is None:
                return 0
            flight.at[gw.name] = estimate.to_switch(flight.record.activate_us)
        return flight.at[gw.name]

    def _send(self, flight: BatchFlight, gw: Slb, op: Op, first: int, batch: Batch,
              activate_at: int = 0):
        """first: the snapshot number the request starts at."""
        try:
            pending = gw.control.send_batch(
                op, wire_id(first), batch,
                partial(self._answered, flight, gw, gw.incarnation, first), activate_at)
        except SwitchUnavailable:
            return self.engine.switch_down(gw)
        flight.pending.append(pending)

    def _answered(self, flight: BatchFlight, gw: Slb, incarnation: int, first: int,
                  answer: Answer):
        """On the session's receive thread, as Singles._answered."""
        estimate = gw.clock.current
        if gw.clock.source == clock.PACKET_OUT:
            gw.clock.add(clock.Sample.of(answer))
        self.loop.put((BATCH, flight, gw, incarnation, first, answer, estimate))

    # -- answers ----------------------------------------------------------------

    def on_answer(self, flight: BatchFlight, gw: Slb, incarnation: int, first: int,
                  answer: Answer, estimate: clock.Estimate | None):
        if flight.done or answer.op != flight.phase or incarnation != gw.incarnation:
            return   # late, for a phase already over, or from a switch since gone
        self.timing.observe(answer.rtt_us)
        if answer.op is Op.INIT_BATCH:
            self._confirmed(flight, gw, answer)
        elif answer.op is Op.READ_BATCH:
            self._described(flight, gw, answer, estimate)
        else:
            self._recorded(flight, gw, first, answer, estimate)

    def _confirmed(self, flight: BatchFlight, gw: Slb, answer: Answer):
        """INIT_BATCH: the SLB holds the schedule; an INIT that arrived after
        the first time is late for every ID whose time had come."""
        if gw.name not in flight.waiting:
            return
        flight.waiting.discard(gw.name)
        if answer.status is Status.TOO_FAR:
            log.warning("%s is too far behind for a batch", gw.name)
            self.engine.bring_forward(gw)
        if answer.status is not Status.SCHEDULED:
            return self.fail(flight, gw.name, f"{gw.name} answered {answer.status.name} "
                                              "to the batch")
        record = flight.record
        late_us = answer.body.now - answer.body.activate_at
        if late_us >= 0:
            flight.late.add(gw.name)
            self.summary.late_inits += min(record.count,
                                                  late_us // max(1, record.spacing_us) + 1)
        if not flight.waiting:
            self._read_after_activation(flight)

    def _read_after_activation(self, flight: BatchFlight):
        """Every SLB holds the schedule: READ_BATCH once its last time has
        surely passed on the controller's clock."""
        record = flight.record
        last = record.activate_us + (record.count - 1) * record.spacing_us
        error = max((gw.clock.current.error_us if gw.clock.current else 0)
                    for gw in self.by_name.values())
        flight.phase = Op.READ_BATCH
        flight.round = 0
        self.loop.at(int(last + error) + READ_AFTER_US, partial(self.send_round, flight))

    def _described(self, flight: BatchFlight, gw: Slb, answer: Answer,
                   estimate: clock.Estimate | None):
        """READ_BATCH: the schedule as the SLB holds it; judged once every
        SLB answered."""
        if gw.name not in flight.waiting:
            return
        if answer.status is Status.SCHEDULED:   # before the switch's last time: again soon
            return self.loop.at(now_us() + READ_AFTER_US, partial(self.send, flight, gw))
        flight.waiting.discard(gw.name)
        flight.record.acks[gw.name] = ScheduleAck(gw.name, answer.status, answer.body,
                                                  answer.batch, answer.sent_us,
                                                  answer.received_us, flight.round, estimate)
        if not flight.waiting:
            self._judge(flight)

    def _judge(self, flight: BatchFlight):
        record = flight.record
        record.finished_us = max(a.received_us for a in record.acks.values())
        judgement = judge_batch(record, self.settings, self.engine.newest_id)
        record.verdict = judgement.verdict
        unclear = [record.first + i for i in judgement.unclear]
        if self.reports.links and judgement.verdict.outcome is Outcome.ACCEPTED:
            clear = [n for n in record.numbers if n - record.first not in judgement.unclear]
            for first, count in _runs(clear, record.count):   # by distinct state
                self.reports.ask_run(flight, first, count)
        if unclear:
            self._read_records(flight, unclear)
        if flight.settled():
            self.engine.finish_batch(flight)

    def _apart(self, flight: BatchFlight, record: SnapshotRecord,
               verdict: Verdict | None = None) -> Flight:
        apart = Flight(record, flight.retakes_left)
        apart.batch = flight
        apart.verdict = verdict
        apart.late = flight.late
        flight.apart[record.number] = apart
        return apart

    # -- the IDs the schedules leave unclear --------------------------------------

    def _read_records(self, flight: BatchFlight, numbers: list[int]):
        record = flight.record
        for number in numbers:
            i = number - record.first
            own = SnapshotRecord(number, record.mode, record.rule, record.tau_us, record.slbs,
                                 record.started_us, record.wall_time,
                                 activate_us=record.activate_us + i * record.spacing_us)
            apart = self._apart(flight, own)
            apart.phase = Op.READ
            apart.waiting = set(self.by_name)
        self.summary.by_records += len(numbers)
        flight.phase = Op.READ_RECORDS
        flight.round = 0
        self._send_records_round(flight)

    def _owed(self, flight: BatchFlight, name: str) -> list[int]:
        return sorted(n for n, f in flight.apart.items()
                      if f.phase is Op.READ and name in f.waiting)

    def _send_records_round(self, flight: BatchFlight):
        """READ_RECORDS of what each SLB owes, RECORDS_MAX consecutive IDs a
        request; one deadline for them all."""
        flight.round += 1
        flight.unread.clear()
        flight.stale.clear()   # still owed: asked again below
        for name, gw in self.by_name.items():
            owed = self._owed(flight, name)
            flight.unread.update((name, n) for n in owed)
            for first, count in _runs(owed, RECORDS_MAX):
                self._send(flight, gw, Op.READ_RECORDS, first, Batch(count))
        self.loop.at(now_us() + self.timing.deadline_us(),
                     partial(self.overdue, flight, Op.READ_RECORDS, flight.round))

    def _recorded(self, flight: BatchFlight, gw: Slb, first: int, answer: Answer,
                  estimate: clock.Estimate | None):
        """READ_RECORDS from first: each record acknowledges its own
        snapshot.  An ID passed unrecorded takes the record of the ID before
        it when that one has one (the same move passed both: epoch.p4 does
        this within a request, here across them), so it waits while that
        record is still to come: answers may arrive in any order (a lost one
        is resent), and judged on its STALE bounds first it would lose the
        record, and with it why the SLB switched late.  A record still
        SCHEDULED after its time means the SLB never reached it: it answers
        for its current ID, as a STALE one does."""
        count = len(answer.records) if answer.status is Status.OK else (
            answer.batch.count if answer.batch else RECORDS_MAX)
        flight.unread.difference_update((gw.name, n) for n in range(first, first + count))
        if answer.status is not Status.OK:
            for n in range(first, first + count):
                if (apart := flight.apart.get(n)) is not None and gw.name in apart.waiting:
                    self.engine.fail(apart, f"{gw.name} answered {answer.status.name} to "
                                            "READ_RECORDS")
        else:
            for i, r in enumerate(answer.records):
                self._take(flight, gw, first + i, r, answer, estimate)
        for n in range(first, first + count):   # no record to wait for any more
            self._after(flight, gw, n)

    def _take(self, flight: BatchFlight, gw: Slb, number: int, r: Record, answer: Answer,
              estimate: clock.Estimate | None):
        """One record of gw for number, unless it must wait for the one before."""
        before = (gw.name, number - 1)
        if r.status == Status.STALE:
            if before in flight.unread or before in flight.stale:
                flight.stale[gw.name, number] = (r, answer, estimate)
                return
            if (passed := flight.passed.get(before)) is not None:
                r = replace(passed, snapshot_id=wire_id(number), count=0)
        if r.status == Status.OK:
            flight.passed[gw.name, number] = r
        apart = flight.apart.get(number)
        if apart is None or apart.done or gw.name not in apart.waiting:
            return
        record = flight.record
        schedule = record.acks.get(gw.name)
        held = schedule is not None and schedule.status is Status.OK
        status = Status.STALE if r.status == Status.SCHEDULED else Status(r.status)
        at = schedule.time_of(number - record.first) if held else 0
        body = ControlBody(answer.body.seq, r.snapshot_id, answer.body.id_before,
                           answer.body.id_after, answer.body.now, r.switch_time,
                           r.last_old_time, r.count, answer.body.slb_id, answer.body.flags, at)
        self.singles.acknowledged(apart, Ack(gw.name, status, body, answer.sent_us,
                                             answer.received_us, flight.round, estimate),
                                  Op.READ)

    def _after(self, flight: BatchFlight, gw: Slb, number: int):
        """number's record at gw is in, or will not come: the STALE ones
        after it that waited for it are taken, in order."""
        while (waited := flight.stale.pop((gw.name, number + 1), None)) is not None:
            number += 1
            self._take(flight, gw, number, *waited)

    # -- failures ---------------------------------------------------------------

    def overdue(self, flight: BatchFlight, op: Op, round_: int):
        if flight.done or flight.phase != op or flight.round != round_:
            return
        waiting = (sorted(flight.waiting) if op is not Op.READ_RECORDS else
                   [name for name in self.by_name if self._owed(flight, name)])
        if not waiting:
            return
        for pending in flight.pending:   # given up on: they no longer count against the SLB
            pending.cancel()
        flight.pending.clear()
        if round_ <= self.settings.retries:
            return (self._send_records_round(flight) if op is Op.READ_RECORDS else
                    self.send_round(flight))
        waited = f"within {self.timing.deadline_us() / 1000:g} ms ({round_} attempts)"
        for name in waiting:
            self.fail(flight, name, f"no acknowledgement from {name} {waited}")
        if op is Op.INIT_BATCH:   # no SLB reads these IDs, which activate on a READ
            for gw in self.by_name.values():   # when no traffic comes: bring all past them
                self.engine.bring_forward(gw)

    def fail(self, flight: BatchFlight, name: str, reason: str):
        """Every snapshot of the batch still waiting on name is incomplete."""
        if flight.done:
            return
        if flight.record.verdict is None:   # before the schedules judged it: all of it
            flight.record.verdict = Verdict(Outcome.INCOMPLETE, reason)
            flight.waiting.clear()
        for apart in list(flight.apart.values()):
            if not apart.done and name in apart.waiting and apart.phase is Op.READ:
                self.engine.fail(apart, reason)
        if flight.settled():
            self.engine.finish_batch(flight)

    def switch_down(self, gw: Slb):
        """gw went away: every batch its schedules have not cleared yet fails,
        and what it still owes.  Not only those waiting on it: once an SLB
        confirmed its schedule it waits for nothing until READ_BATCH, and its
        recovery (an immediate INIT of the newest ID started) moves it ahead
        of those schedules' times, which their tracking cannot see (and a
        restarted switch has lost it)."""
        for flight in list(self.flights.values()):
            if not flight.done and (flight.record.verdict is None or
                                    self._owed(flight, gw.name)):
                self.fail(flight, gw.name, f"{gw.name} went down before the batch was judged")


def _runs(numbers: list[int], longest: int) -> list[tuple[int, int]]:
    """Sorted numbers as (first, count) runs of consecutive ones, each at most
    `longest` long."""
    runs: list[tuple[int, int]] = []
    for n in numbers:
        if runs and runs[-1][0] + runs[-1][1] == n and runs[-1][1] < longest:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((n, 1))
    return runs
