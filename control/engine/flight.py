"""Snapshots in progress: one on its own (Flight), or a batch of them that
shares its control messages (BatchFlight)."""
from __future__ import annotations

from beaver.p4src.wire import Op, Record

from beaver.control.engine.record import BatchRecord, SnapshotRecord, Verdict
from beaver.control.slbs.requests import Pending
from beaver.traffic.oob.cuts import Cut


class Flight:
    """A snapshot in progress."""

    def __init__(self, record: SnapshotRecord, retakes_left: int):
        self.record = record
        self.retakes_left = retakes_left
        self.phase: Op | None = Op.INIT      # INIT, READ, RELEASE (blocking), None: reports
        self.waiting: set[str] = set()       # SLBs or processes still to answer
        self.round = 0                       # requests sent to each SLB still waiting
        self.pending: list[Pending] = []
        self.verdict: Verdict | None = None  # decided, not yet final (release, reports)
        self.late: set[str] = set()          # timed: SLBs whose INIT arrived after its time
        self.batch: BatchFlight | None = None   # the batch it was judged apart from
        self.done = False


class BatchFlight:
    """Consecutive snapshots scheduled together.  Each SLB confirms the
    schedule (INIT_BATCH), then answers for it once its last time has come
    (READ_BATCH); the snapshots its schedules do not clear are read and
    judged one by one (READ_RECORDS, as Flights); with in-group processes,
    those then collect their reports as Flights too, and the IDs the
    schedules accepted collect theirs by distinct state, a ReportRun for
    each run of consecutive ones."""

    def __init__(self, record: BatchRecord, retakes_left: int):
        self.record = record
        self.retakes_left = retakes_left
        self.phase: Op | None = Op.INIT_BATCH   # then READ_BATCH, READ_RECORDS; None: apart
        self.waiting: set[str] = set()          # SLBs still to answer this phase
        self.round = 0
        self.pending: list[Pending] = []
        self.late: set[str] = set()
        self.at: dict[str, int] = {}            # per SLB, the first time its INIT_BATCH gave
        self.apart: dict[int, Flight] = {}      # numbers finishing on their own, unfinished
        self.passed: dict[tuple[str, int], Record] = {}   # READ_RECORDS: (SLB, number) -> the
                                                          # record of an ID it passed
        self.unread: set[tuple[str, int]] = set()   # READ_RECORDS asked this round, unanswered
        self.stale: dict[tuple[str, int], tuple] = {}   # a STALE record waiting for the one
                                                        # before it: (record, answer, estimate)
        self.runs: set[ReportRun] = set()       # report runs unfinished
        self.done = False

    def settled(self) -> bool:
        return self.record.verdict is not None and not self.apart and not self.runs


class ReportRun:
    """The reports of snapshots first .. first + count - 1 of a batch, asked
    of every process in one exchange, answered by distinct state."""

    def __init__(self, batch: BatchFlight, first: int, count: int):
        self.batch = batch
        self.first = first                   # a snapshot number
        self.count = count
        self.waiting: set[str] = set()       # processes still to answer
        self.cuts: dict[str, list[Cut]] = {}   # each process's answer, by distinct state
        self.done = False
