"""The snapshot engine: starts snapshots at every SLB, hands each to the
requests that carry it, judges, gathers the in-group reports and stores
verdicts.

One thread runs everything that decides (loop.py); the switches' receive
threads and the process links only put events on its queue:

    answer  an SLB answered a snapshot's request      (singles.py)
    batch   an SLB answered a batch's request         (batches.py)
    report  a process answered or failed              (ingroup.py)
    down    an SLB's stream closed

The path of a snapshot, top to bottom:

    _start / _start_batch       a number (or a range) from the window, and
                                for timed initiation its activation time
                                (timing.py)
    Singles / Batches           the requests to every SLB and their answers
    judged / Batches._judge     the verdict from the answers (judging.py)
    Reports.ask                 an accepted one asks each in-group process
    finish / finish_batch       the verdict, committed to the store before
                                anyone hears of it (ledger.py)

Modes (record.Mode):
  OGM       INIT every SLB at once; the coarse or fine rule (rules.py) judges.
            Initiation is immediate (the paper's: each SLB switches when its
            INIT arrives) or timed: every INIT carries one activation time,
            `lead` ahead, on each SLB's own clock, and a READ after the time
            fetches the record the rules judge.  Batched (batch > 1, timed
            only): consecutive snapshots share one schedule per SLB, judged
            by the schedules at once (batches.py).  Back-pressure: no batch
            starts while an SLB has QUEUED_AT_SLB requests unanswered.  An
            SLB further behind than its ring reaches is first brought to the
            newest ID whose snapshots are all over.
  MGM       one SLB; consistent by construction.
  BLOCKING  INIT with FLAG_HOLD at every SLB, then RELEASE every SLB once all
            committed; whatever happens, every SLB is sent a RELEASE.
  LAI_YANG  baseline: no SLB is initiated; the processes (in the runtime's
            lai-yang mode) are told out of band; nothing is detected.
  POLLING   baseline: nothing is initiated; each process snapshots on its own
            timer and the engine waits for the reports; nothing is detected.

An experiment can initiate chosen SLBs or processes late (delays_us), as the
seed's Figure 5 has a gateway that learns of the snapshot late.
"""
from __future__ import annotations

import gc
import logging
import time
from typing import Callable, Sequence

from beaver.p4src import ids
from beaver.p4src.wire import FLAG_HOLD, Op

from beaver.control.engine.batches import BATCH, QUEUED_AT_SLB, Batches
from beaver.control.config import ProcessConfig
from beaver.control.slbs.fleet import SlbFleet, Slb
from beaver.control.engine.flight import BatchFlight, Flight
from beaver.control.engine.ingroup import REPORT, Reports
from beaver.control.engine.judging import judge
from beaver.control.engine.ledger import SAVED, Ledger
from beaver.control.engine.loop import Loop
from beaver.control.engine.record import Mode, Outcome, SnapshotRecord, Verdict
from beaver.control.p4runtime.session import SwitchUnavailable
from beaver.control.engine.settings import (WITHOUT_SLBS, IMMEDIATE, TIMED, RunSettings, RunSummary,
                       SettingsError)
from beaver.control.engine.singles import ANSWER, Singles
from beaver.control.slbs.requests import now_us
from beaver.control.store import SnapshotStore
from beaver.control.engine.timing import Timing
from beaver.control.engine.window import IdWindow, wire_id

__all__ = ["Engine", "IMMEDIATE", "TIMED", "RunSettings", "RunSummary", "SettingsError"]

log = logging.getLogger(__name__)

DOWN = "down"
RESERVE_BLOCK = 65_536     # snapshot numbers reserved in the store at a time: each
                           # reservation is a checkpoint, once per 4 batches at 1,024


class Engine:
    def __init__(self, controller: SlbFleet, store: SnapshotStore, settings: RunSettings,
                 processes: Sequence[ProcessConfig] = (),
                 on_finished: Callable[[SnapshotRecord], None] | None = None):
        self.controller = controller
        self.slbs = controller.slbs
        self.by_name = {gw.name: gw for gw in self.slbs}
        self.store = store
        self.settings = settings
        self.processes = list(processes)
        self.summary = RunSummary()
        self.loop = Loop(settings.delays_us)
        self.timing = Timing(settings, controller.round_trips, self._waiting_us)
        self.ledger = Ledger(store, self.summary, on_finished, self.loop.put)
        self.singles = Singles(self, self.loop, settings, self.timing, self.by_name)
        # What a run opens (links to the processes) or numbers from the store:
        self.reports: Reports | None = None
        self.batched: Batches | None = None
        self.window: IdWindow | None = None
        self.flights: dict[int, Flight] = {}
        self.newest_id = 0          # the newest ID sent: what a recovered SLB gets back
        self._retakes: list[tuple[int, int]] = []   # (number retaken, retakes left)
        self._asked = 0             # snapshots started, retakes not counted
        self._stopping = False

    @property
    def on_finished(self) -> Callable[[SnapshotRecord], None] | None:
        """Told of each snapshot once it is stored."""
        return self.ledger.on_finished

    @on_finished.setter
    def on_finished(self, callback: Callable[[SnapshotRecord], None] | None):
        self.ledger.on_finished = callback

    # -- the run --------------------------------------------------------------

    def stop(self):
        """Starts no more snapshots; those in flight still finish.  Safe from
        a signal handler."""
        self._stopping = True

    def run(self) -> RunSummary:
        s = self.settings
        s.check(len(self.slbs))
        if s.mode in WITHOUT_SLBS and not self.processes:
            raise SettingsError(f"mode {s.mode.value} snapshots in-group processes: "
                                "the configuration lists none")
        if self.controller.plain:
            raise SettingsError("the SLBs run the plain pipeline (no epoch state): no "
                                "snapshot can be taken; configure [pipeline] name = \"beaver\"")
        self.controller.require_primary()
        if s.mode not in WITHOUT_SLBS and (off := self.controller.marking_off()):
            raise SettingsError(f"marking is off at {', '.join(off)}: mode {s.mode.value} "
                                "needs every SLB to mark what it forwards")
        self.newest_id = self.controller.newest_id()
        self.window = IdWindow(self._first_number(), s.inflight)
        before = wire_id(self.window.next_number - 1)
        if s.batch > 1 and ids.is_newer(before, self.newest_id):
            for gw in self.slbs:   # so that the window's batches fit their rings
                gw.request(Op.INIT, before)
        for rtt in self.controller.align_clocks():
            self.timing.observe(rtt)
        self.controller.on_down = lambda gw, incarnation: self.loop.put((DOWN, gw, incarnation))
        self.reports = Reports(self, self.loop, s, self.processes)
        self.batched = Batches(self, self.loop, s, self.timing, self.by_name, self.summary,
                               self.singles, self.reports)
        # What exists before the run (gRPC, the modules, the fleet) is not the
        # run's garbage: frozen, the collector's full passes scan only what the
        # run makes.  Unfrozen they took 13-30 ms at |G| = 2, a stall that
        # made the INITs in flight late.
        gc.freeze()
        begin, begin_cpu = time.monotonic(), time.process_time()
        next_start = now_us()
        next_clock = time.monotonic() + s.clock_interval_s
        try:
            while True:
                clock_due = time.monotonic() >= next_clock
                if clock_due and not self.window.open:   # measure with nothing in flight
                    for rtt in self.controller.align_clocks():
                        self.timing.observe(rtt)
                    next_clock = time.monotonic() + s.clock_interval_s
                    next_start = max(next_start, now_us())
                    clock_due = False
                may_start = (not (self._stopping or clock_due) and self._all_up()
                             and self._slbs_keep_up())
                if may_start:
                    while self._retakes and self.window.can_start():
                        self._start(*self._retakes.pop(0))
                    while (self._asked < s.count and self.window.can_start(self._next_size())
                           and (now := now_us()) >= next_start):
                        size = self._next_size()
                        if s.rate:
                            self.summary.behind_us = max(self.summary.behind_us,
                                                         now - next_start)
                            next_start += int(size * 1e6 / s.rate)
                        if size == 1:
                            self._start(None, s.retake)
                        else:
                            self._start_batch(size, s.retake)
                        self._asked += size
                if not self.window.open and (self._stopping or
                                             (self._asked >= s.count and not self._retakes)):
                    break
                more = (may_start and self._asked < s.count and
                        self.window.can_start(self._next_size()))
                self.loop.wait(self._handle, next_start if more else None,
                               self.ledger.commit_due)
                self.ledger.settle()
        finally:
            gc.unfreeze()
            self.controller.on_down = None
            self._abandon()
            self.ledger.close()
            self.reports.close()
            self.summary.reports_asked, self.summary.reasked = (self.reports.asked,
                                                                self.reports.reasked)
            self.summary.elapsed_s = time.monotonic() - begin
            self.summary.cpu_s = time.process_time() - begin_cpu
            self.summary.interrupted = self._stopping
            self.summary.lead_us = self.timing.leads
        return self.summary

    def _handle(self, event: tuple):
        kind = event[0]
        if kind == ANSWER:
            self.singles.on_answer(*event[1:])
        elif kind == BATCH:
            self.batched.on_answer(*event[1:])
        elif kind == REPORT:
            self.reports.on_report(*event[1:])
        elif kind == DOWN:
            self._on_down(*event[1:])
        elif kind == SAVED:
            self.ledger.on_saved()

    def _waiting_us(self) -> int:
        """How long the oldest request any SLB has not answered has waited."""
        now = now_us()
        return max((gw.control.waiting_us(now) for gw in self.slbs), default=0)

    def _all_up(self) -> bool:
        """Every SLB connected (a DOWN event is on its way otherwise); raises
        NotPrimary if a connected one lost primacy to another controller."""
        if not all(gw.session.connected for gw in self.slbs):
            return False
        if not all(gw.session.is_primary for gw in self.slbs):
            self.controller.require_primary()
        return True

    def _slbs_keep_up(self) -> bool:
        """Batched: every SLB has room in its queue for one more batch."""
        return self.settings.batch == 1 or all(
            gw.control.outstanding < QUEUED_AT_SLB for gw in self.slbs)

    def _first_number(self) -> int:
        """After the last number the store reserved and every ID an SLB holds."""
        last = self.store.reserved_through
        return last + max(0, ids.ahead(self.newest_id, wire_id(last))) + 1

    def _next_size(self) -> int:
        """How many snapshots the next start takes: a batch, or what is left."""
        return max(1, min(self.settings.batch, self.settings.count - self._asked))

    # -- starting -------------------------------------------------------------

    def reserve(self, through: int):
        """Numbers up to `through` may reach a switch: the store reserves
        them (in blocks) first."""
        if through > self.store.reserved_through:
            left = max(1, self.settings.count - self._asked)
            self.ledger.reserve(max(through, through + min(RESERVE_BLOCK, left) - 1))

    def started(self, first: int, count: int):
        self.newest_id = wire_id(first + count - 1)
        self.summary.started += count
        if self.summary.first is None:
            self.summary.first = first
        self.summary.last = first + count - 1

    def _start(self, retake_of: int | None, retakes_left: int):
        s = self.settings
        number = self.window.start()
        self.reserve(number)
        rule = s.rule if s.mode is Mode.OGM else s.mode.value
        record = SnapshotRecord(number, s.mode, rule, s.tau_us, list(self.by_name), now_us(),
                                time.time(), retake_of=retake_of)
        flight = Flight(record, retakes_left)
        self.flights[number] = flight
        self.started(number, 1)
        if s.mode in WITHOUT_SLBS:
            record.slbs = []
            record.finished_us = record.started_us
            flight.verdict = Verdict(Outcome.ACCEPTED, f"{s.mode.value}: no slbs, "
                                     "nothing detected", s.mode.value)
            return self.after_acks(flight)
        flight.waiting = set(self.by_name)
        if s.initiation == TIMED:
            record.activate_us = self.timing.activation(1)
        self.singles.send_round(flight, Op.INIT, FLAG_HOLD if s.mode is Mode.BLOCKING else 0)
        if flight.pending:
            record.started_us = min(p.sent_us for p in flight.pending)

    def _start_batch(self, count: int, retakes_left: int):
        first = self.window.start(count)
        self.reserve(first + count - 1)
        self.batched.start(first, count, retakes_left)

    def late_init(self, flight: Flight, slb: str):
        """slb's INIT for flight arrived after its time: its SLB switched
        late, which may cost the snapshot."""
        flight.late.add(slb)
        self.summary.late_inits += 1

    def bring_forward(self, gw: Slb):
        """Moves gw at once to the newest ID before which every snapshot is
        over (skipping them harms none), so that batches fit its ring again."""
        caught_up = wire_id(self.window.oldest - 1)
        log.info("%s brought forward to ID %d", gw.name, caught_up)
        try:
            pending = gw.control.send(Op.INIT, caught_up, 0, lambda answer: None)
        except SwitchUnavailable:
            return self.switch_down(gw)
        self.loop.at(now_us() + self.timing.deadline_us(), pending.cancel)   # if it was lost

    def switch_down(self, gw: Slb):
        self.loop.put((DOWN, gw, gw.incarnation))

    # -- verdicts -------------------------------------------------------------

    def judged(self, flight: Flight):
        """Every SLB gave its final answer."""
        flight.verdict = judge(flight.record, self.settings, self.newest_id, flight.late)
        if flight.record.mode is Mode.BLOCKING and flight.verdict.outcome is Outcome.ACCEPTED:
            return self.singles.release(flight)
        self.after_acks(flight)

    def after_acks(self, flight: Flight):
        """Every SLB answered: finish, or ask the in-group processes first."""
        if flight.verdict.outcome is not Outcome.ACCEPTED or not self.reports.links:
            return self.finish(flight, flight.verdict)
        self.reports.ask(flight)

    def fail(self, flight: Flight, reason: str):
        verdict = Verdict(Outcome.INCOMPLETE, reason)
        if flight.record.mode is Mode.BLOCKING and flight.phase == Op.INIT:
            flight.verdict = verdict   # never leave an SLB holding traffic
            return self.singles.release(flight)
        self.finish(flight, verdict)

    def finish(self, flight: Flight, verdict: Verdict):
        flight.done = True
        record = flight.record
        record.verdict = verdict
        if verdict.outcome is not Outcome.ACCEPTED or len(flight.pending) > len(self.slbs):
            for pending in flight.pending:   # forget unanswered requests
                pending.cancel()
        if flight.batch is not None:   # judged apart from its batch
            batch = flight.batch
            batch.record.singles[record.number] = record
            del batch.apart[record.number]
            if batch.settled():
                self.finish_batch(batch)
            return
        self.window.finish(record.number)
        del self.flights[record.number]
        if verdict.outcome is Outcome.REJECTED and flight.retakes_left > 0:
            self._retakes.append((record.number, flight.retakes_left - 1))
        self.ledger.add(record)

    def finish_batch(self, flight: BatchFlight):
        if flight.done:
            return
        flight.done = True
        for pending in flight.pending:   # nothing more is read of this batch
            pending.cancel()
        record = flight.record
        self.window.finish(record.first)
        del self.batched.flights[record.first]
        if flight.retakes_left > 0:
            rejected = [n for n in record.numbers if (record.singles.get(n) or record)
                        .verdict.outcome is Outcome.REJECTED]
            self._retakes.extend((n, flight.retakes_left - 1) for n in rejected)
        self.ledger.add_batch(record)

    # -- a switch that went away ----------------------------------------------

    def _on_down(self, gw: Slb, incarnation: int):
        if incarnation != gw.incarnation:
            return   # already recovered
        log.warning("%s went down; recovering", gw.name)
        for flight in list(self.flights.values()):
            if not flight.done and gw.name in flight.waiting and flight.phase in (Op.INIT,
                                                                                  Op.READ):
                self.fail(flight, f"{gw.name} went down before acknowledging")
        self.batched.switch_down(gw)
        self.controller.recover(gw, self.newest_id, self.settings.recover_timeout_s)
        for flight in list(self.flights.values()):
            if not flight.done and gw.name in flight.waiting and flight.phase == Op.RELEASE:
                self.singles.send(flight, gw, Op.RELEASE)   # a fresh switch holds nothing

    def _abandon(self):
        """The run ends abnormally: whatever is still in flight is incomplete,
        and no SLB is left holding traffic."""
        held = False
        unfinished = Verdict(Outcome.INCOMPLETE, "the run ended before it finished")
        for flight in list(self.flights.values()):
            held |= flight.record.mode is Mode.BLOCKING
            self.finish(flight, unfinished)
        for batch in list(self.batched.flights.values()):
            for apart in list(batch.apart.values()):
                self.finish(apart, unfinished)
            self.reports.abandon(batch, unfinished)
            if batch.record.verdict is None:
                batch.record.verdict = unfinished
            self.finish_batch(batch)
        if held:
            for gw in self.slbs:
                try:
                    gw.request(Op.RELEASE)
                except Exception as e:   # best effort: say so, go on with the others
                    log.error("%s: could not release held traffic: %s", gw.name, e)
