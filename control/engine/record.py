"""What one snapshot leaves behind: its SLB acknowledgements, the in-group
reports and the verdict.  The engine fills it, the rules judge it, the store
keeps it, the CLI shows it."""
from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass, field, replace

from beaver.p4src.wire import Batch, ControlBody, Status

from beaver.control.slbs.clock import Estimate
from beaver.traffic.oob.protocol import Report
from beaver.control.engine.window import wire_id


class Mode(str, enum.Enum):
    OGM = "ogm"            # every SLB at once, no blocking; judged by a rule
    MGM = "mgm"            # one SLB: consistent by construction
    BLOCKING = "blocking"  # the strawman: hold inbound at every SLB, commit all, release
    LAI_YANG = "lai-yang"  # baseline: no slbs, the processes initiated out of band
    POLLING = "polling"    # baseline: no initiation, each process snapshots on its timer


class Outcome(str, enum.Enum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"      # a detection rule saw a possible inconsistency
    INCOMPLETE = "incomplete"  # an SLB or a process did not answer in time


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    rule: str = ""                  # the rule that decided, if one did
    margin_us: float | None = None  # how far past the rule's bound (> 0 rejects)


@dataclass
class Ack:
    """One SLB's final answer for the snapshot (the INIT's, or for a timed
    initiation the READ's after the activation), with the clock estimate in
    force when it arrived."""
    slb: str
    status: Status
    body: ControlBody
    sent_us: int          # controller clock, the answered attempt
    received_us: int      # controller clock
    attempts: int         # requests sent, resends included
    clock: Estimate | None = None

    @property
    def exact(self) -> bool:
        """The record describes this snapshot's ID (STALE: the SLB's newer one)."""
        return self.status in (Status.OK, Status.ALREADY)


@dataclass
class SnapshotRecord:
    number: int                 # unwrapped: 1, 2, 3, ... never reused
    mode: Mode
    rule: str                   # the detection rule for OGM, else the mode's name
    tau_us: int
    slbs: list[str]             # the SLBs initiated
    started_us: int             # t0: first INIT sent (controller clock): the ID exists
    wall_time: float            # Unix time at the start, for people
    finished_us: int | None = None   # t1: last acknowledgement received
    acks: dict[str, Ack] = field(default_factory=dict)
    reports: dict[str, Report] = field(default_factory=dict)
    verdict: Verdict | None = None
    retake_of: int | None = None     # the rejected snapshot this one retakes
    activate_us: int | None = None   # timed initiation: when every SLB was to switch
    batch: range | None = None       # judged by this batch's schedules: the acks are
                                     # their bounds (BatchRecord.record), not records

    @property
    def snapshot_id(self) -> int:
        """The ID on the wire."""
        return wire_id(self.number)


@dataclass
class ScheduleAck:
    """One SLB's answer about a batch's schedule (READ_BATCH after the last
    of its times): the schedule as the SLB holds it (body.activate_at: its
    first time, on the switch's clock; schedule: count, spacing, and how far
    its lateness is trusted), with the clock estimate in force when the
    answer arrived."""
    slb: str
    status: Status
    body: ControlBody
    schedule: Batch
    sent_us: int
    received_us: int
    attempts: int
    clock: Estimate | None = None

    def time_of(self, index: int) -> int:
        """When the index-th ID of the schedule was due, on the switch's clock."""
        return self.body.activate_at + index * self.schedule.spacing


@dataclass(frozen=True)
class ReportRange:
    """A process's one report for the snapshots first .. last of a batch: the
    same cut for each (traffic/oob/cuts.py), kept once; `report` is first's."""
    first: int
    last: int
    report: Report

    def of(self, number: int) -> Report:
        return replace(self.report, snapshot_id=wire_id(number))


@dataclass
class BatchRecord:
    """Consecutive snapshots scheduled together, one schedule per SLB, and
    judged by them: `verdict` is the verdict of every number of the batch
    but those in `singles`, which were judged on their own records (or
    failed on their own).  The store keeps a batch as one range, and each
    process's reports as ranges of the numbers they stand for (`reports`,
    in number order): every number the verdict accepts is in one range of
    every process when reports were collected."""
    first: int                  # the first snapshot number
    count: int
    mode: Mode
    rule: str
    tau_us: int
    slbs: list[str]
    started_us: int             # t0: the first INIT_BATCH sent (controller clock)
    wall_time: float
    activate_us: int            # when the first was to be taken (controller clock)
    spacing_us: int             # between consecutive activations
    finished_us: int | None = None
    acks: dict[str, ScheduleAck] = field(default_factory=dict)
    verdict: Verdict | None = None
    singles: dict[int, SnapshotRecord] = field(default_factory=dict)
    reports: dict[str, list[ReportRange]] = field(default_factory=dict)

    @property
    def numbers(self) -> range:
        return range(self.first, self.first + self.count)

    def record(self, number: int) -> SnapshotRecord:
        """Snapshot `number` as its own record: a single one, or the batch's
        verdict with each SLB's schedule as its acknowledgement."""
        if number in self.singles:
            return self.singles[number]
        i = number - self.first
        record = SnapshotRecord(number, self.mode, self.rule, self.tau_us, self.slbs,
                                self.started_us, self.wall_time, self.finished_us,
                                verdict=self.verdict,
                                activate_us=self.activate_us + i * self.spacing_us,
                                batch=self.numbers)
        for name, a in self.acks.items():
            at = a.time_of(i)
            body = replace(a.body, snapshot_id=wire_id(number), switch_time=at,
                           last_old_time=max(at - 1, a.schedule.late_last), count=0,
                           activate_at=at)
            record.acks[name] = Ack(name, a.status, body, a.sent_us, a.received_us,
                                    a.attempts, a.clock)
        for process, ranges in self.reports.items():
            index = bisect.bisect_right(ranges, number, key=lambda r: r.first) - 1
            if index >= 0 and ranges[index].last >= number:
                record.reports[process] = ranges[index].of(number)
        return record
