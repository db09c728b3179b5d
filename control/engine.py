"""The snapshot engine: initiates snapshots at every SLB, collects the
acknowledgements, judges, gathers the in-group reports and stores verdicts.

One thread runs everything that decides; the switches' receive threads and
the process links only put events on its queue:

    ANSWER  an SLB answered a request      (from a session's receive thread)
    BATCH   an SLB answered a batched one  (from a session's receive thread)
    REPORT  a process answered or failed   (from a ProcessLink thread)
    DOWN    an SLB's stream closed         (from a session's receive thread)

A snapshot completes as soon as its last event arrives.  Every request has
a deadline; an unanswered INIT is resent (the SLB answers ALREADY with the
same record) up to `retries` times, then the snapshot is incomplete.

Modes (record.Mode):
  OGM       INIT every SLB at once; the coarse or fine rule (rules.py) judges.
            Initiation is immediate (the paper's: each SLB switches when its
            INIT arrives) or timed: every INIT carries one activation time,
            `lead` ahead, on each SLB's own clock, so the SLBs switch within
            their clock errors of each other however late the INITs travel;
            each answers SCHEDULED, and a READ after the time fetches the
            record the rules judge.  An INIT that arrives after its time
            switches on arrival, and its record shows it (a late INIT).
            Batched (batch > 1, timed only): consecutive snapshots share
            their control messages, one INIT_BATCH and one READ_BATCH per
            SLB for up to BATCH_MAX IDs, each ID at its own activation time;
            each snapshot is still judged on its own records and stored
            with its own verdict (a batch is a transport, never a verdict).
            Back-pressure: no batch starts while an SLB has QUEUED_AT_SLB
            requests unanswered (a switch that falls behind would otherwise
            time out and lose snapshots).  An SLB further behind than its
            ring reaches (after a failure, or a run that starts far ahead)
            is first brought to the newest ID whose snapshots are all over.
  MGM       one SLB; consistent by construction.
  BLOCKING  INIT with FLAG_HOLD at every SLB, then RELEASE every SLB once all
            committed; whatever happens, every SLB is sent a RELEASE.
  LAI_YANG  baseline: no SLB is initiated; the processes (in the runtime's
            lai-yang mode) are told out of band; nothing is detected.
  POLLING   baseline: nothing is initiated; each process snapshots on its own
            timer and the engine waits for the reports; nothing is detected.

An experiment can initiate chosen SLBs or processes late (delays_us), as the
seed's Figure 5 has a gateway that learns of the snapshot late.

After every SLB acknowledged (and the rule accepted), each in-group process
is asked out of band for its report; the channel state must add up
(reports.channel_gaps) before the snapshot is accepted.  Finished snapshots
are committed to the store before anyone is told about them.

Whatever the rule, a snapshot is never accepted while an SLB reports its
marking off, or an ID ahead of every ID this controller started (learned
from a forged STAMP, or set by another controller).  Each answer keeps the
clock estimate in force when its receive thread got it.
"""
from __future__ import annotations

import collections
import heapq
import itertools
import logging
import queue
import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Callable, Sequence

from beaver.p4src import ids
from beaver.p4src.wire import BATCH_MAX, FLAG_HOLD, RING_SIZE, ControlBody, Op, Status

from . import clock, rules
from .config import ProcessConfig
from .controller import Controller, Gateway
from .reports import Answered, ProcessLink, channel_gaps, strangers
from .record import Ack, Mode, Outcome, SnapshotRecord, Verdict
from .session import SwitchUnavailable
from .slb import Answer, Pending, now_us
from .store import SnapshotStore
from .window import MAX_SPAN, IdWindow, wire_id

log = logging.getLogger(__name__)

ANSWER, BATCH, REPORT, DOWN = "answer", "batch", "report", "down"
GATEWAYLESS = (Mode.LAI_YANG, Mode.POLLING)   # baselines that initiate no SLB
RESERVE_BLOCK = 1024       # snapshot numbers reserved in the store at a time
POLL_INTERVAL_US = 10_000  # re-asking for reports whose channel state is not whole yet
COMMIT_DELAY_US = 5_000    # group commit: a finished snapshot waits at most this long
IMMEDIATE, TIMED = "immediate", "timed"
LEAD_FLOOR_US = 1_000      # timed initiation: the least lead time
LEAD_RTTS = 2.0            # the default lead: this many times the recent round trips
LEAD_QUANTILE = 0.95       # ... at this quantile: one stalled answer must not set it
RECENT_RTTS = 256          # round trips the default lead looks back on
READ_AFTER_US = 100        # a READ leaves this long after the latest activation could be
QUEUED_AT_SLB = 4          # batched: a new batch waits while an SLB has this many unanswered


class SettingsError(ValueError):
    """A run that cannot be made with this service (for example MGM with 3 SLBs)."""


@dataclass(frozen=True)
class RunSettings:
    mode: Mode = Mode.OGM
    rule: str = rules.FINE
    tau_us: int = 5000
    count: int = 1                  # snapshots asked for (retakes come on top)
    inflight: int = 1               # k: most snapshots in flight at once
    batch: int = 1                  # IDs per control message (timed OGM; 1: unbatched)
    rate: float | None = None       # snapshots started per second; None: as the window allows
    ack_timeout_ms: float = 100.0
    retries: int = 2
    report_timeout_ms: float = 2000.0
    retake: int = 0                 # retakes allowed for each rejected snapshot
    initiation: str = IMMEDIATE     # OGM: immediate or timed
    lead_us: int | None = None      # timed: activation this far ahead; None: from round trips
    clock_interval_s: float = 10.0
    recover_timeout_s: float = 30.0
    delays_us: dict[str, int] = field(default_factory=dict)   # SLB or process -> late start

    def check(self, slbs: int):
        if self.count < 1:
            raise SettingsError("--count must be at least 1")
        if self.inflight < 1:
            raise SettingsError("--inflight must be at least 1")
        if self.inflight > MAX_SPAN:
            raise SettingsError(f"--inflight {self.inflight} could overwrite SLB records before "
                                f"they are read: the ring keeps the last {MAX_SPAN + 1} IDs, "
                                f"so at most {MAX_SPAN} may be in flight")
        if not 1 <= self.batch <= min(BATCH_MAX, self.inflight):
            raise SettingsError(f"--batch must be 1 to {BATCH_MAX} (one message's IDs) and no "
                                f"more than --inflight ({self.inflight}): a batch is in "
                                "flight whole")
        if self.batch > 1 and (self.mode is not Mode.OGM or self.initiation != TIMED):
            raise SettingsError("--batch is for mode ogm with --initiation timed: batched "
                                "IDs activate at their own times")
        if self.rate is not None and self.rate <= 0:
            raise SettingsError("--rate must be positive")
        if self.retake < 0:
            raise SettingsError("--retake must not be negative")
        if self.tau_us < 0:
            raise SettingsError("--tau must not be negative")
        if self.rule not in (rules.FINE, rules.COARSE):
            raise SettingsError(f"unknown rule {self.rule!r}: fine or coarse")
        if self.mode is Mode.MGM and slbs != 1:
            raise SettingsError(f"mode mgm is for one SLB; the service has {slbs}")
        if self.mode is Mode.BLOCKING and self.inflight != 1:
            raise SettingsError("mode blocking holds traffic until all SLBs commit: "
                                "it takes one snapshot at a time (--inflight 1)")
        if any(delay < 0 for delay in self.delays_us.values()):
            raise SettingsError("initiation delays must not be negative")
        if self.initiation not in (IMMEDIATE, TIMED):
            raise SettingsError(f"unknown initiation {self.initiation!r}: immediate or timed")
        if self.initiation == TIMED and self.mode is not Mode.OGM:
            raise SettingsError("--initiation timed is for mode ogm")
        if self.lead_us is not None and self.lead_us <= 0:
            raise SettingsError("--lead-us must be positive")


@dataclass
class RunSummary:
    started: int = 0
    outcomes: dict[Outcome, int] = field(default_factory=lambda: dict.fromkeys(Outcome, 0))
    elapsed_s: float = 0.0
    first: int | None = None
    last: int | None = None
    interrupted: bool = False
    late_inits: int = 0             # timed: INITs that reached their SLB after their time
    lead_us: list[int] = field(default_factory=list)   # timed: least and most lead used
    behind_us: int = 0              # with a rate: the furthest starts fell behind it
    cpu_s: float = 0.0              # this process's CPU time during the run, every thread

    @property
    def finished(self) -> int:
        return sum(self.outcomes.values())

    @property
    def rate(self) -> float:
        return self.finished / self.elapsed_s if self.elapsed_s > 0 else 0.0


class _Flight:
    """A snapshot in progress."""

    def __init__(self, record: SnapshotRecord, retakes_left: int):
        self.record = record
        self.retakes_left = retakes_left
        self.phase: Op | None = Op.INIT      # INIT, RELEASE (blocking), None: processes report
        self.waiting: set[str] = set()       # SLBs or processes still to answer
        self.round = 0                       # requests sent to each SLB still waiting
        self.pending: list[Pending] = []
        self.verdict: Verdict | None = None  # decided, not yet final (release, reports)
        self.lead_us = 0                     # timed: how far ahead it was scheduled
        self.late: set[str] = set()          # timed: SLBs whose INIT arrived after its time
        self.done = False


def _switched_late(flight: _Flight, acks: list[Ack]) -> str:
    """Why a timed snapshot's SLBs did not switch at one moment: those that
    forwarded old-ID packets after the activation time, which on time they
    never do, and why: an INIT that arrived after it, or more IDs falling
    due at once than one packet activates (epoch.p4's DUE_STEPS)."""
    late = [a.slb + (" (its INIT arrived after it)" if a.slb in flight.late else
                     " (more IDs due at once than one packet activates)")
            for a in acks if a.exact and a.body.activate_at
            and a.body.last_old_time > a.body.activate_at]
    return f"; old-ID packets after the activation time at {', '.join(late)}" if late else ""


class _Batch:
    """Consecutive snapshots whose control travels together.  Each SLB
    confirms the whole batch (INIT_BATCH) and then reads the records of the
    IDs it still owes, lowest to highest (READ_BATCH); a record lands in
    its own flight, which the rules judge as an unbatched one."""

    def __init__(self, flights: list[_Flight], spacing_us: int):
        self.flights = flights
        self.spacing_us = spacing_us
        self.phase = Op.INIT_BATCH
        self.round = 0
        self.unconfirmed: set[str] = set()         # INIT_BATCH: SLBs still to answer
        self.unread: dict[str, set[int]] = {}      # READ_BATCH: SLB -> flight indexes owed
        self.pending: list[Pending] = []

    def owed(self, name: str) -> range | None:
        """The flights name still owes a record for, as one range."""
        left = self.unread.get(name)
        return range(min(left), max(left) + 1) if left else None

    def settled(self) -> bool:
        return all(f.done for f in self.flights)


class Engine:
    def __init__(self, controller: Controller, store: SnapshotStore, settings: RunSettings,
                 processes: Sequence[ProcessConfig] = (),
                 on_finished: Callable[[SnapshotRecord], None] | None = None):
        self.controller = controller
        self.gateways = controller.gateways
        self.store = store
        self.settings = settings
        self.processes = list(processes)
        self.links: list[ProcessLink] = []
        self.on_finished = on_finished
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self._timers: list = []
        self._tick = itertools.count()
        self._unsaved: list[SnapshotRecord] = []   # finished, not yet committed
        self._commit_due = 0
        self._retakes: list[tuple[int, int]] = []   # (number retaken, retakes left)
        self._flights: dict[int, _Flight] = {}
        self._stopping = False
        self._asked = 0            # snapshots started, retakes not counted
        self._by_name = {gw.name: gw for gw in self.gateways}
        self._newest_id = 0        # the newest ID sent: what a recovered SLB gets back
        self.summary = RunSummary()
        self.window: IdWindow | None = None
        self._rtts: collections.deque[int] = collections.deque(maxlen=RECENT_RTTS)
        self._last_activation = 0   # timed: the latest activation time handed out
        self._late_lead = 0         # timed: the least lead since an INIT arrived late

    # -- the run --------------------------------------------------------------

    def stop(self):
        """Starts no more snapshots; those in flight still finish.  Safe from
        a signal handler."""
        self._stopping = True

    def run(self) -> RunSummary:
        s = self.settings
        s.check(len(self.gateways))
        if s.mode in GATEWAYLESS and not self.processes:
            raise SettingsError(f"mode {s.mode.value} snapshots in-group processes: "
                                "the configuration lists none")
        self.controller.require_primary()
        if s.mode not in GATEWAYLESS and (off := self.controller.marking_off()):
            raise SettingsError(f"marking is off at {', '.join(off)}: mode {s.mode.value} "
                                "needs every SLB to mark what it forwards")
        self._newest_id = self.controller.newest_id()
        self.window = IdWindow(self._first_number(), s.inflight)
        before = wire_id(self.window.next_number - 1)
        if s.batch > 1 and ids.ahead(before, self._newest_id) >= RING_SIZE - BATCH_MAX:
            for gw in self.gateways:   # the run starts further ahead than their ring reaches
                gw.request(Op.INIT, before)
        self._rtts.extend(self.controller.align_clocks())
        self.controller.on_down = lambda gw, incarnation: self.events.put((DOWN, gw, incarnation))
        self.links = [ProcessLink(p, s.report_timeout_ms / 1000, self._reported)
                      for p in self.processes]
        begin, begin_cpu = time.monotonic(), time.process_time()
        next_start = now_us()
        next_clock = time.monotonic() + s.clock_interval_s
        try:
            while True:
                clock_due = time.monotonic() >= next_clock
                if clock_due and not self.window.open:   # measure with nothing in flight
                    self._rtts.extend(self.controller.align_clocks())
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
                self._wait(next_start if more else None)
                self._settle()
        finally:
            self.controller.on_down = None
            self._abandon()
            self._settle(force=True)
            for link in self.links:
                link.close()
            self.summary.elapsed_s = time.monotonic() - begin
            self.summary.cpu_s = time.process_time() - begin_cpu
            self.summary.interrupted = self._stopping
        return self.summary

    def _all_up(self) -> bool:
        """Every SLB connected (a DOWN event is on its way otherwise); raises
        NotPrimary if a connected one lost primacy to another controller."""
        if not all(gw.session.connected for gw in self.gateways):
            return False
        if not all(gw.session.is_primary for gw in self.gateways):
            self.controller.require_primary()
        return True

    def _slbs_keep_up(self) -> bool:
        """Batched: every SLB has room in its queue for one more batch."""
        return self.settings.batch == 1 or all(
            gw.control.outstanding < QUEUED_AT_SLB for gw in self.gateways)

    def _bring_forward(self, gw: Gateway):
        """Moves gw at once to the newest ID before which every snapshot is
        over (skipping them harms none), so that batches fit its ring again."""
        caught_up = wire_id(self.window.oldest - 1)
        log.info("%s brought forward to ID %d", gw.name, caught_up)
        try:
            pending = gw.control.send(Op.INIT, caught_up, 0, lambda answer: None)
        except SwitchUnavailable:
            return self.events.put((DOWN, gw, gw.incarnation))
        self._at(now_us() + self._batch_timeout_us(), pending.cancel)   # if it was lost

    def _first_number(self) -> int:
        """After the last number the store reserved and every ID an SLB holds."""
        last = self.store.reserved_through
        return last + max(0, ids.ahead(self._newest_id, wire_id(last))) + 1

    def _wait(self, next_start_us: int | None):
        """Handles the events of the next moment: blocks until one arrives, a
        timer is due or the next snapshot may start; then drains the queue."""
        now = now_us()
        until = [t for t in (next_start_us, self._timers[0][0] if self._timers else None,
                             self._commit_due if self._unsaved else None) if t is not None]
        timeout = max(0.0, (min(until) - now) / 1e6) if until else 0.5
        try:
            event = self.events.get(timeout=min(timeout, 0.5))
        except queue.Empty:
            event = None
        while event is not None:
            self._handle(event)
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                event = None
        now = now_us()
        while self._timers and self._timers[0][0] <= now:
            _, _, action = heapq.heappop(self._timers)
            action()

    def _at(self, when_us: int, action: Callable[[], None]):
        heapq.heappush(self._timers, (when_us, next(self._tick), action))

    # -- starting -------------------------------------------------------------

    def _next_size(self) -> int:
        """How many snapshots the next start takes: a batch, or what is left."""
        return max(1, min(self.settings.batch, self.settings.count - self._asked))

    def _new_flight(self, retake_of: int | None, retakes_left: int) -> _Flight:
        s = self.settings
        number = self.window.start()
        if number > self.store.reserved_through:
            self.store.reserve(number + min(RESERVE_BLOCK, max(1, s.count - self._asked)) - 1)
        rule = s.rule if s.mode is Mode.OGM else s.mode.value
        record = SnapshotRecord(number, s.mode, rule, s.tau_us,
                                [gw.name for gw in self.gateways], now_us(), time.time(),
                                retake_of=retake_of)
        flight = _Flight(record, retakes_left)
        self._flights[number] = flight
        self._newest_id = record.snapshot_id
        self.summary.started += 1
        if self.summary.first is None:
            self.summary.first = number
        self.summary.last = number
        return flight

    def _start(self, retake_of: int | None, retakes_left: int):
        s = self.settings
        flight = self._new_flight(retake_of, retakes_left)
        record = flight.record
        if s.mode in GATEWAYLESS:
            record.slbs = []
            record.finished_us = record.started_us
            flight.verdict = Verdict(Outcome.ACCEPTED, f"{s.mode.value}: no gateways, "
                                     "nothing detected", s.mode.value)
            return self._after_acks(flight)
        flight.waiting = set(self._by_name)
        if s.initiation == TIMED:
            record.activate_us = self._activation(1)
            flight.lead_us = record.activate_us - now_us()
        self._send_round(flight, Op.INIT, FLAG_HOLD if s.mode is Mode.BLOCKING else 0)
        if flight.pending:
            record.started_us = min(p.sent_us for p in flight.pending)

    def _spacing(self) -> int:
        """IDs activate in order, one per packet: never schedule one before
        the one before it, nor so close that both fall due together."""
        return int(1e6 / self.settings.rate) if self.settings.rate else 1

    def _activation(self, count: int) -> int:
        """The activation time of the first of count IDs about to start,
        `spacing` apart; the last is remembered for the next."""
        lead = self.settings.lead_us or self._lead()
        first = max(now_us() + lead, self._last_activation + self._spacing())
        self._last_activation = first + (count - 1) * self._spacing()
        lead_range = self.summary.lead_us
        self.summary.lead_us = [min(lead_range + [lead]), max(lead_range + [lead])]
        return first

    def _start_batch(self, size: int, retakes_left: int):
        flights = [self._new_flight(None, retakes_left) for _ in range(size)]
        batch = _Batch(flights, self._spacing())
        first = self._activation(size)
        for i, flight in enumerate(flights):
            flight.record.activate_us = first + i * batch.spacing_us
            flight.lead_us = flight.record.activate_us - now_us()
            flight.waiting = set(self._by_name)
        self._send_batch_round(batch)
        sent = min((p.sent_us for p in batch.pending), default=None)
        for flight in flights:
            flight.record.started_us = sent or flight.record.started_us

    def _lead(self) -> int:
        """The default lead: LEAD_RTTS times the LEAD_QUANTILE of recent
        round trips (queueing included), at least LEAD_FLOOR_US, and at
        least what a late INIT showed was needed (_late_init)."""
        return max(LEAD_FLOOR_US, int(LEAD_RTTS * self._recent_rtt()), self._late_lead)

    def _late_init(self, flight: _Flight, slb: str, late_us: int):
        """slb's INIT for flight arrived late_us after its time: its SLB
        switched late, which may cost the snapshot.  Load can outgrow the
        recent round trips at once, so every later lead covers LEAD_RTTS
        times that INIT's travel."""
        flight.late.add(slb)
        self.summary.late_inits += 1
        if slb in self.settings.delays_us:   # late on purpose (an experiment's late SLB)
            return
        travel = flight.lead_us + late_us
        self._late_lead = max(self._late_lead, int(LEAD_RTTS * travel))

    def _recent_rtt(self) -> int:
        """The LEAD_QUANTILE of recent round trips (0 if none yet)."""
        rtts = sorted(self._rtts)
        return rtts[int(LEAD_QUANTILE * (len(rtts) - 1))] if rtts else 0

    def _send_round(self, flight: _Flight, op: Op, flags: int = 0):
        """Sends op to every SLB still waiting, with one deadline for them all;
        the first INIT of an SLB with a delay leaves late."""
        flight.phase = op
        flight.round += 1
        late = op is Op.INIT and flight.round == 1
        for name in sorted(flight.waiting):
            send = partial(self._send, flight, self._by_name[name], op, flags)
            if late:
                self._later(name, send)
            else:
                send()
        delay = self._most_delay(flight.waiting) if late else 0
        self._at(now_us() + delay + int(self.settings.ack_timeout_ms * 1000),
                 partial(self._overdue, flight, op, flags, flight.round))

    def _later(self, name: str, action: Callable[[], None]):
        """Runs action now, or after name's initiation delay."""
        delay = self.settings.delays_us.get(name, 0)
        if delay:
            self._at(now_us() + delay, action)
        else:
            action()

    def _most_delay(self, names) -> int:
        return max((self.settings.delays_us.get(n, 0) for n in names), default=0)

    def _send(self, flight: _Flight, gw: Gateway, op: Op, flags: int = 0):
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
            self.events.put((DOWN, gw, gw.incarnation))
            return
        flight.pending.append(pending)

    def _answered(self, flight: _Flight, gw: Gateway, incarnation: int, answer: Answer):
        """On the session's receive thread: the clock estimate in force now
        is the one this answer is read by (the engine may see it only after
        the switch restarted and the estimate began again)."""
        estimate = gw.clock.current
        if gw.clock.source == clock.PACKET_OUT:
            gw.clock.add(clock.Sample.of(answer))
        self.events.put((ANSWER, flight, gw, incarnation, answer, estimate))

    # -- batched control ------------------------------------------------------

    def _send_batch_round(self, batch: _Batch):
        """INIT_BATCH, or READ_BATCH of what each SLB owes, to every SLB
        still waiting, with one deadline for them all; the first INIT_BATCH
        of an SLB with a delay leaves late."""
        init = batch.phase is Op.INIT_BATCH
        late = init and batch.round == 0
        batch.round += 1
        if late:
            batch.unconfirmed = set(self._by_name)
        names = sorted(batch.unconfirmed if init else
                       (n for n, owed in batch.unread.items() if owed))
        for name in names:
            send = partial(self._send_batch, batch, self._by_name[name])
            if late:
                self._later(name, send)
            else:
                send()
        delay = self._most_delay(names) if late else 0
        self._at(now_us() + delay + self._batch_timeout_us(),
                 partial(self._batch_overdue, batch, batch.phase, batch.round))

    def _batch_timeout_us(self) -> int:
        """A batch's deadline: the configured one, or longer while the
        switches answer slower (a batch costs them many IDs' work, and an
        early resend only adds to their queue)."""
        return max(int(self.settings.ack_timeout_ms * 1000), 2 * self._recent_rtt())

    def _send_batch(self, batch: _Batch, gw: Gateway):
        if batch.phase is Op.INIT_BATCH:
            indexes = range(len(batch.flights))
            estimate = gw.clock.current
            activate_at = (estimate.to_switch(batch.flights[0].record.activate_us)
                           if estimate is not None else 0)
        else:
            indexes = batch.owed(gw.name)
            if indexes is None:
                return
            activate_at = 0
        first = batch.flights[indexes[0]].record.snapshot_id
        try:
            pending = gw.control.send_batch(
                batch.phase, first, len(indexes),
                partial(self._batch_answered, batch, gw, gw.incarnation, indexes.start),
                activate_at, batch.spacing_us)
        except SwitchUnavailable:
            self.events.put((DOWN, gw, gw.incarnation))
            return
        batch.pending.append(pending)

    def _batch_answered(self, batch: _Batch, gw: Gateway, incarnation: int, start: int,
                        answer: Answer):
        """On the session's receive thread, as _answered."""
        estimate = gw.clock.current
        if gw.clock.source == clock.PACKET_OUT:
            gw.clock.add(clock.Sample.of(answer))
        self.events.put((BATCH, batch, gw, incarnation, start, answer, estimate))

    def _on_batch_answer(self, batch: _Batch, gw: Gateway, incarnation: int, start: int,
                         answer: Answer, estimate: clock.Estimate | None):
        if answer.op != batch.phase or incarnation != gw.incarnation:
            return   # late, for a phase already over, or from a switch since gone
        self._rtts.append(answer.rtt_us)
        if answer.op is Op.INIT_BATCH:
            if gw.name not in batch.unconfirmed:
                return
            batch.unconfirmed.discard(gw.name)
            if answer.status is Status.TOO_FAR:
                log.warning("%s is too far behind for a batch", gw.name)
                self._bring_forward(gw)
            if answer.status is not Status.SCHEDULED:
                return self._fail_batch(batch, gw.name, f"{gw.name} answered "
                                        f"{answer.status.name} to the batch")
            first_at = answer.body.activate_at or batch.flights[0].record.activate_us
            for i, flight in enumerate(batch.flights):
                if (late := answer.body.now - (first_at + i * batch.spacing_us)) > 0:
                    self._late_init(flight, gw.name, late)
            if not batch.unconfirmed:
                self._read_batch_after_activation(batch)
            return
        if answer.status is not Status.OK:
            return self._fail_batch(batch, gw.name, f"{gw.name} answered "
                                    f"{answer.status.name} to the batch's READ")
        owed = batch.unread.get(gw.name)
        if owed is None:
            return   # its snapshots failed meanwhile
        body = answer.body
        for i, rec in enumerate(answer.records, start):
            if i not in owed:
                continue
            flight = batch.flights[i]
            if flight.done:
                owed.discard(i)
            elif rec.status != Status.SCHEDULED:   # else: read before its time; again soon
                owed.discard(i)
                record = ControlBody(body.seq, rec.snapshot_id, body.id_before, body.id_after,
                                     body.now, rec.switch_time, rec.last_old_time, rec.count,
                                     body.slb_id, body.flags, rec.activate_at)
                self._acknowledged(flight, Ack(gw.name, Status(rec.status), record,
                                               answer.sent_us, answer.received_us,
                                               batch.round, estimate), Op.READ)
        if owed:   # the round's deadline still stands behind this
            self._at(now_us() + READ_AFTER_US, partial(self._send_batch, batch, gw))
        elif not any(batch.unread.values()):
            for pending in batch.pending:   # forget resent requests never answered
                pending.cancel()

    def _read_batch_after_activation(self, batch: _Batch):
        """Every SLB scheduled the batch: READ_BATCH once its last ID's time
        has surely passed on the controller's clock."""
        last = batch.flights[-1].record.activate_us
        error = max((gw.clock.current.error_us if gw.clock.current else 0)
                    for gw in self.gateways)
        batch.phase = Op.READ_BATCH
        batch.round = 0
        batch.unread = {name: {i for i, f in enumerate(batch.flights) if not f.done}
                        for name in self._by_name}
        for flight in batch.flights:
            flight.phase = Op.READ
        self._at(int(last + error) + READ_AFTER_US, partial(self._send_batch_round, batch))

    def _batch_overdue(self, batch: _Batch, op: Op, round_: int):
        if batch.phase != op or batch.round != round_ or batch.settled():
            return
        waiting = (sorted(batch.unconfirmed) if op is Op.INIT_BATCH else
                   sorted(n for n, owed in batch.unread.items() if owed))
        if not waiting:
            return
        for pending in batch.pending:   # given up on: they no longer count against the SLB
            pending.cancel()
        batch.pending.clear()
        if round_ <= self.settings.retries:
            return self._send_batch_round(batch)
        waited = f"within {self._batch_timeout_us() / 1000:g} ms ({round_} attempts)"
        for name in waiting:
            self._fail_batch(batch, name, f"no acknowledgement from {name} {waited}")
        if op is Op.INIT_BATCH:   # no SLB reads these IDs, which activate on a READ
            for gw in self.gateways:   # when no traffic comes: bring all past them
                self._bring_forward(gw)

    def _fail_batch(self, batch: _Batch, name: str, reason: str):
        """Every snapshot of the batch still waiting on name is incomplete."""
        for flight in batch.flights:
            if not flight.done and name in flight.waiting:
                self._fail(flight, reason)
        batch.unread.pop(name, None)
        if batch.settled():
            for pending in batch.pending:   # nothing more is read of this batch
                pending.cancel()

    # -- events ---------------------------------------------------------------

    def _handle(self, event):
        kind = event[0]
        if kind == ANSWER:
            self._on_answer(*event[1:])
        elif kind == BATCH:
            self._on_batch_answer(*event[1:])
        elif kind == REPORT:
            self._on_report(event[1], event[2])
        elif kind == DOWN:
            self._on_down(*event[1:])

    def _on_answer(self, flight: _Flight, gw: Gateway, incarnation: int, answer: Answer,
                   estimate: clock.Estimate | None):
        if (flight.done or answer.op != flight.phase or gw.name not in flight.waiting
                or incarnation != gw.incarnation):
            return   # late, duplicate, for a phase already over, or from a switch since gone
        self._rtts.append(answer.rtt_us)
        if answer.op == Op.RELEASE:
            flight.waiting.discard(gw.name)
            if not flight.waiting:
                self._after_acks(flight)
            return
        if answer.status is Status.SCHEDULED and answer.op is Op.READ:
            # read before the switch's time (the estimate erred early): again soon
            return self._at(now_us() + READ_AFTER_US, partial(self._send, flight, gw, Op.READ))
        self._acknowledged(flight, Ack(gw.name, answer.status, answer.body, answer.sent_us,
                                       answer.received_us, flight.round, estimate), answer.op)

    def _acknowledged(self, flight: _Flight, ack: Ack, op: Op):
        """One SLB's final answer for flight: judged once every SLB gave one."""
        record = flight.record
        flight.waiting.discard(ack.slb)
        record.acks[ack.slb] = ack
        expected = (Status.OK, Status.ALREADY, Status.STALE, Status.SCHEDULED)
        if ack.status not in expected or (ack.status is Status.SCHEDULED and
                                             record.activate_us is None):
            return self._fail(flight, f"{ack.slb} answered {ack.status.name}")
        if (op is Op.INIT and ack.status is Status.OK and ack.body.activate_at
                and ack.body.switch_time > ack.body.activate_at):
            self._late_init(flight, ack.slb, ack.body.switch_time - ack.body.activate_at)
        if record.mode is Mode.BLOCKING and not ack.body.holding:
            return self._fail(flight, f"{ack.slb} did not hold traffic "
                                      f"({ack.status.name}, ID {ack.body.id_after})")
        if flight.waiting:
            return
        scheduled = {a.slb: a for a in record.acks.values() if a.status is Status.SCHEDULED}
        if scheduled:
            return self._read_after_activation(flight, scheduled)
        record.finished_us = max(a.received_us for a in record.acks.values())
        self._judge(flight)

    def _read_after_activation(self, flight: _Flight, scheduled: dict[str, Ack]):
        """Every SLB scheduled the ID: READ each once its time has surely
        passed on the controller's clock, for the record the rules judge."""
        latest = max(a.clock.to_controller(a.body.activate_at)[1] if a.clock else now_us()
                     for a in scheduled.values())
        flight.phase = Op.READ
        flight.waiting = set(scheduled)
        flight.round = 0
        self._at(int(latest) + READ_AFTER_US, partial(self._send_round, flight, Op.READ))

    def _overdue(self, flight: _Flight, op: Op, flags: int, round_: int):
        if flight.done or flight.phase != op or flight.round != round_ or not flight.waiting:
            return
        if round_ <= self.settings.retries:
            return self._send_round(flight, op, flags)
        silent = ", ".join(sorted(flight.waiting))
        waited = f"within {self.settings.ack_timeout_ms:g} ms ({round_} attempts)"
        if op == Op.RELEASE:
            log.warning("%s did not confirm RELEASE of snapshot %d: may still hold VIP "
                        "traffic", silent, flight.record.number)
            flight.waiting.clear()
            flight.verdict = Verdict(Outcome.INCOMPLETE,
                                     f"{silent} did not confirm the release {waited}")
            self._after_acks(flight)
        else:
            self._fail(flight, f"no acknowledgement from {silent} {waited}")

    def _judge(self, flight: _Flight):
        record, s = flight.record, self.settings
        acks = list(record.acks.values())
        ahead = [a for a in acks if ids.is_newer(a.body.id_after, self._newest_id)]
        if ahead:
            a = ahead[0]
            flight.verdict = Verdict(Outcome.REJECTED, f"{a.slb} is at ID {a.body.id_after}, "
                                     f"ahead of every ID this controller started (newest "
                                     f"{self._newest_id}): learned from a forged STAMP, or "
                                     "set by another controller", "ids")
        elif behind := [a.slb for a in acks if a.status is Status.STALE
                        and not ids.is_newer(a.body.id_after, record.snapshot_id)]:
            flight.verdict = Verdict(Outcome.REJECTED, f"{', '.join(behind)} never reached ID "
                                     f"{record.snapshot_id} (answered STALE from behind it)",
                                     "ids")
        elif (refused := rules.unmarked(acks, record.rule)) is not None:
            flight.verdict = refused
        elif record.mode is Mode.OGM:
            flight.verdict = (rules.fine(acks, rules.switch_window(record)[0], s.tau_us)
                              if s.rule == rules.FINE else
                              rules.coarse(*rules.switch_window(record), s.tau_us, acks))
            if flight.verdict.outcome is Outcome.REJECTED and record.activate_us is not None:
                flight.verdict = replace(flight.verdict, reason=flight.verdict.reason +
                                         _switched_late(flight, acks))
        elif record.mode is Mode.MGM:
            flight.verdict = Verdict(Outcome.ACCEPTED, "mgm: the only gateway initiated first",
                                     "mgm")
        else:
            flight.verdict = Verdict(Outcome.ACCEPTED, "blocking: every SLB held inbound "
                                     "traffic until all had committed", "blocking")
            return self._release(flight)
        self._after_acks(flight)

    def _release(self, flight: _Flight):
        flight.waiting = set(self._by_name)
        flight.round = 0
        self._send_round(flight, Op.RELEASE)

    def _after_acks(self, flight: _Flight):
        """Every SLB answered: finish, or ask the in-group processes first."""
        if flight.verdict.outcome is not Outcome.ACCEPTED or not self.links:
            return self._finish(flight, flight.verdict)
        flight.phase = None
        flight.waiting = {link.name for link in self.links}
        # Polling initiates nothing: it only asks for what the timers took.
        op = "report" if flight.record.mode is Mode.POLLING else "snapshot"
        for link in self.links:
            self._later(link.name, partial(link.ask, op, flight.record.snapshot_id, flight))
        self._at(now_us() + self._most_delay(flight.waiting) +
                 int(self.settings.report_timeout_ms * 1000),
                 partial(self._reports_overdue, flight))

    # -- in-group reports -----------------------------------------------------

    def _reported(self, answered: Answered):
        self.events.put((REPORT, answered.token, answered))

    def _on_report(self, flight: _Flight, answered: Answered):
        if flight.done:
            return
        if answered.error is not None:
            return self._fail(flight, str(answered.error))
        report = answered.report
        if not report.taken and flight.record.mode is Mode.POLLING:
            return self._at(now_us() + POLL_INTERVAL_US,   # its timer has not fired yet
                            partial(self._poll, flight, {answered.process}))
        if not report.taken:
            return self._fail(flight, f"{answered.process} has not taken snapshot "
                                      f"{flight.record.snapshot_id}")
        flight.record.reports[answered.process] = report
        flight.waiting.discard(answered.process)
        if not flight.waiting:
            self._check_channels(flight)

    def _check_channels(self, flight: _Flight):
        if unknown := strangers(flight.record.reports):
            return self._finish(flight, Verdict(
                Outcome.REJECTED, f"channel state from {', '.join(unknown)}, which is no "
                "configured process: its state is not in the snapshot", "channels"))
        gaps = channel_gaps(flight.record.reports)
        impossible = [g for g in gaps if g.impossible]
        if impossible:
            return self._finish(flight, Verdict(
                Outcome.REJECTED, f"inconsistent cut: {impossible[0]}", "channels"))
        if not gaps:
            return self._finish(flight, flight.verdict)
        receivers = {g.receiver for g in gaps}
        flight.waiting = set(receivers)
        self._at(now_us() + POLL_INTERVAL_US, partial(self._poll, flight, receivers))

    def _poll(self, flight: _Flight, receivers: set[str]):
        if flight.done:
            return
        for link in self.links:
            if link.name in receivers:
                link.ask("report", flight.record.snapshot_id, flight)

    def _reports_overdue(self, flight: _Flight):
        if flight.done:
            return
        gaps = channel_gaps(flight.record.reports)
        missing = sorted(set(link.name for link in self.links) - set(flight.record.reports))
        if missing:
            reason = f"no report from {', '.join(missing)}"
        else:
            reason = f"{gaps[0]}" if gaps else "reports incomplete"
        self._fail(flight, f"{reason} within {self.settings.report_timeout_ms:g} ms")

    # -- a switch that went away ----------------------------------------------

    def _on_down(self, gw: Gateway, incarnation: int):
        if incarnation != gw.incarnation:
            return   # already recovered
        log.warning("%s went down; recovering", gw.name)
        for flight in list(self._flights.values()):
            if not flight.done and gw.name in flight.waiting and flight.phase in (Op.INIT,
                                                                                  Op.READ):
                self._fail(flight, f"{gw.name} went down before acknowledging")
        self.controller.recover(gw, self._newest_id, self.settings.recover_timeout_s)
        for flight in list(self._flights.values()):
            if not flight.done and gw.name in flight.waiting and flight.phase == Op.RELEASE:
                self._send(flight, gw, Op.RELEASE)   # a fresh switch holds nothing; confirm

    # -- finishing ------------------------------------------------------------

    def _fail(self, flight: _Flight, reason: str):
        verdict = Verdict(Outcome.INCOMPLETE, reason)
        if flight.record.mode is Mode.BLOCKING and flight.phase == Op.INIT:
            flight.verdict = verdict   # never leave an SLB holding traffic
            return self._release(flight)
        self._finish(flight, verdict)

    def _finish(self, flight: _Flight, verdict: Verdict):
        flight.done = True
        record = flight.record
        record.verdict = verdict
        if verdict.outcome is not Outcome.ACCEPTED or len(flight.pending) > len(self.gateways):
            for pending in flight.pending:   # forget unanswered requests
                pending.cancel()
        self.window.finish(record.number)
        del self._flights[record.number]
        self.summary.outcomes[verdict.outcome] += 1
        if verdict.outcome is Outcome.REJECTED and flight.retakes_left > 0:
            self._retakes.append((record.number, flight.retakes_left - 1))
        if not self._unsaved:
            self._commit_due = now_us() + COMMIT_DELAY_US
        self._unsaved.append(record)

    def _settle(self, force: bool = False):
        """Commits finished snapshots together (one fsync for many), then
        reports them: nobody hears of a snapshot the store could still lose."""
        if not self._unsaved or not (force or now_us() >= self._commit_due):
            return
        batch, self._unsaved = self._unsaved, []
        self.store.save(batch)
        if self.on_finished is not None:
            for record in batch:
                self.on_finished(record)

    def _abandon(self):
        """The run ends abnormally: whatever is still in flight is incomplete,
        and no SLB is left holding traffic."""
        held = False
        for flight in list(self._flights.values()):
            held |= flight.record.mode is Mode.BLOCKING
            self._finish(flight, Verdict(Outcome.INCOMPLETE, "the run ended before it finished"))
        if held:
            for gw in self.gateways:
                try:
                    gw.request(Op.RELEASE)
                except Exception as e:   # best effort: say so, go on with the others
                    log.error("%s: could not release held traffic: %s", gw.name, e)
