"""The durable snapshot store: one SQLite file.

Every finished snapshot is written with its acknowledgements, in-group
reports and verdict in one transaction, and the caller reports it only after
`save` returned: an accepted snapshot is never reported and then lost.  The
file is in WAL mode; `durable` (synchronous=FULL) also survives a power cut,
otherwise (NORMAL) a crash of the controller only.

A batch judged by its schedules is kept as one range (`batches`, with each
SLB's schedule answer in `batch_acks`): one row for up to a ring's worth of
snapshots.  The numbers of a batch judged on their own records have rows of
their own in `snapshots`, which take precedence; `get` answers for any
number either way.

A process's report is kept as what changed since its report in the snapshot
saved before (traffic/oob/deltas.py), and whole every CHAIN_MOST-th time and
at the first of each store object: reading one rebuilds it from at most
CHAIN_MOST rows, and every reader (the checker, a restore) gets whole states.

Snapshot numbers are reserved in blocks before they are used (`reserve`),
so after a crash and restart the next number continues after every number
that may have reached a switch.
"""
from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path

from beaver.p4src.wire import Batch, ControlBody, Status

from beaver.control.slbs.clock import Estimate
from beaver.traffic.oob.protocol import Report
from beaver.control.engine.record import Ack, BatchRecord, Mode, Outcome, ScheduleAck, SnapshotRecord, Verdict

SCHEMA_VERSION = 4   # 2: timed initiation and clock sources; 3: batches as ranges;
                     # 4: reports as changes from an earlier one (a 3 would misread them)
CHAIN_MOST = 16      # reports of a process kept as changes in a row, at most
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    id          INTEGER PRIMARY KEY,   -- unwrapped number; the wire ID is id mod 2^32
    snapshot_id INTEGER NOT NULL,
    mode        TEXT NOT NULL,
    rule        TEXT NOT NULL,
    tau_us      INTEGER NOT NULL,
    slbs        TEXT NOT NULL,         -- JSON list: the SLBs initiated
    started_us  INTEGER NOT NULL,      -- t0, controller clock
    finished_us INTEGER,               -- t1, controller clock
    activate_us INTEGER,               -- timed initiation: when the SLBs were to switch
    wall_time   REAL NOT NULL,
    outcome     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    decided_by  TEXT NOT NULL,
    margin_us   REAL,
    retake_of   INTEGER
);
CREATE INDEX IF NOT EXISTS snapshots_outcome ON snapshots (outcome);
CREATE TABLE IF NOT EXISTS acks (
    snapshot      INTEGER NOT NULL REFERENCES snapshots (id),
    slb           TEXT NOT NULL,
    status        TEXT NOT NULL,
    record_id     INTEGER NOT NULL,    -- the ID the record fields describe
    attempts      INTEGER NOT NULL,
    sent_us       INTEGER NOT NULL,
    received_us   INTEGER NOT NULL,
    id_before     INTEGER NOT NULL,
    id_after      INTEGER NOT NULL,
    now_dp        INTEGER NOT NULL,
    switch_time   INTEGER NOT NULL,
    last_old_time INTEGER NOT NULL,
    count         INTEGER NOT NULL,
    slb_id        INTEGER NOT NULL,
    flags         INTEGER NOT NULL,
    activate_at   INTEGER NOT NULL,    -- the ID's scheduled time, switch clock (0: none)
    offset_us     REAL,                -- the clock estimate when the answer arrived
    error_us      REAL,
    clock_source  TEXT,                -- probe or packet-out
    PRIMARY KEY (snapshot, slb)
);
CREATE TABLE IF NOT EXISTS batches (
    first       INTEGER PRIMARY KEY,   -- the first snapshot number of the range
    last        INTEGER NOT NULL,
    singles     INTEGER NOT NULL,      -- numbers in the range with rows in snapshots
    mode        TEXT NOT NULL,
    rule        TEXT NOT NULL,
    tau_us      INTEGER NOT NULL,
    slbs        TEXT NOT NULL,
    started_us  INTEGER NOT NULL,
    finished_us INTEGER,
    activate_us INTEGER NOT NULL,      -- when the first was to be taken (controller clock)
    spacing_us  INTEGER NOT NULL,
    wall_time   REAL NOT NULL,
    outcome     TEXT NOT NULL,         -- the verdict of every number not in snapshots
    reason      TEXT NOT NULL,
    decided_by  TEXT NOT NULL,
    margin_us   REAL
);
CREATE TABLE IF NOT EXISTS batch_acks (
    first         INTEGER NOT NULL REFERENCES batches (first),
    slb           TEXT NOT NULL,
    status        TEXT NOT NULL,
    attempts      INTEGER NOT NULL,
    sent_us       INTEGER NOT NULL,
    received_us   INTEGER NOT NULL,
    id_before     INTEGER NOT NULL,
    id_after      INTEGER NOT NULL,
    now_dp        INTEGER NOT NULL,
    slb_id        INTEGER NOT NULL,
    flags         INTEGER NOT NULL,
    activate_at   INTEGER NOT NULL,    -- the schedule's first time, switch clock
    count         INTEGER NOT NULL,
    spacing       INTEGER NOT NULL,
    track         INTEGER NOT NULL,
    late_last     INTEGER NOT NULL,
    offset_us     REAL,
    error_us      REAL,
    clock_source  TEXT,
    PRIMARY KEY (first, slb)
);
CREATE TABLE IF NOT EXISTS reports (
    snapshot INTEGER NOT NULL REFERENCES snapshots (id),
    process  TEXT NOT NULL,
    report   TEXT NOT NULL,            -- the out-of-band report message, JSON; its
                                       -- "delta" base is a snapshot number here
    PRIMARY KEY (snapshot, process)
);
"""


class StoreError(Exception):
    """The store file cannot be opened or is not a Beaver snapshot store."""


class SnapshotStore:
    def __init__(self, path: str | Path, durable: bool = True):
        self.path = Path(path)
        try:
            # one user at a time, but not always the thread that opened it
            self.db = sqlite3.connect(self.path, isolation_level=None,
                                      check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self.db.executescript(SCHEMA)
            version = self._meta("schema_version")
            if version is None or version == 3:   # 3's tables are 4's, its reports whole
                self._set_meta("schema_version", SCHEMA_VERSION)
            elif version != SCHEMA_VERSION:
                raise StoreError(f"{self.path}: store schema {version}, this controller "
                                 f"reads {SCHEMA_VERSION}")
            self._reserved = self._meta("reserved_through") or 0
            # process -> (number, local state, changes in a row) of its last report saved
            self._last: dict[str, tuple[int, object, int]] = {}
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{self.path}: not a snapshot store: {e}") from None

    def close(self):
        self.db.close()

    def _meta(self, key: str) -> int | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: int):
        self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) "
                        "DO UPDATE SET value = excluded.value", (key, value))

    # -- numbers --------------------------------------------------------------

    @property
    def reserved_through(self) -> int:
        """The highest snapshot number that may have been used (0: none)."""
        return self._reserved

    def reserve(self, through: int):
        """Records that numbers up to `through` may be used; committed on return."""
        if through > self._reserved:
            self._set_meta("reserved_through", through)
            self._reserved = through

    # -- snapshots ------------------------------------------------------------

    def save(self, records: list[SnapshotRecord], batches: list[BatchRecord] = ()):
        """Commits finished snapshots, and batches with their own, in one
        transaction."""
        records = list(records) + [r for b in batches for r in b.singles.values()]
        reports, last = self._report_rows(records)
        with self.db:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT INTO snapshots VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(r.number, r.snapshot_id, r.mode.value, r.rule, r.tau_us,
                  json.dumps(r.slbs), r.started_us, r.finished_us, r.activate_us, r.wall_time,
                  r.verdict.outcome.value, r.verdict.reason, r.verdict.rule,
                  r.verdict.margin_us, r.retake_of) for r in records])
            self.db.executemany(
                "INSERT INTO acks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(r.number, a.slb, a.status.name, a.body.snapshot_id, a.attempts,
                  a.sent_us, a.received_us,
                  a.body.id_before, a.body.id_after, a.body.now, a.body.switch_time,
                  a.body.last_old_time, a.body.count, a.body.slb_id, a.body.flags,
                  a.body.activate_at, *_clock(a.clock))
                 for r in records for a in r.acks.values()])
            self.db.executemany("INSERT INTO reports VALUES (?,?,?)", reports)
            self.db.executemany(
                "INSERT INTO batches VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(b.first, b.first + b.count - 1, len(b.singles), b.mode.value, b.rule,
                  b.tau_us, json.dumps(b.slbs), b.started_us, b.finished_us, b.activate_us,
                  b.spacing_us, b.wall_time, b.verdict.outcome.value, b.verdict.reason,
                  b.verdict.rule, b.verdict.margin_us) for b in batches])
            self.db.executemany(
                "INSERT INTO batch_acks VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(b.first, a.slb, a.status.name, a.attempts, a.sent_us, a.received_us,
                  a.body.id_before, a.body.id_after, a.body.now, a.body.slb_id, a.body.flags,
                  a.body.activate_at, a.schedule.count, a.schedule.spacing, a.schedule.track,
                  a.schedule.late_last, *_clock(a.clock))
                 for b in batches for a in b.acks.values()])
        self._last = last   # only once committed: a base must be a row that is there

    def _report_rows(self, records: list[SnapshotRecord]) -> tuple[list[tuple], dict]:
        """The reports' rows, each as changes from its process's last report
        saved before it when the chain allows; and the last ones then."""
        last, rows = dict(self._last), []
        for r in sorted(records, key=lambda r: r.number):
            for name, report in r.reports.items():
                before = last.get(name)
                if not report.taken:
                    rows.append((r.number, name, json.dumps(report.to_message())))
                    continue
                if before is not None and before[0] < r.number and before[2] < CHAIN_MOST:
                    message, chain = report.to_message(before[:2]), before[2] + 1
                else:
                    message, chain = report.to_message(), 0
                rows.append((r.number, name, json.dumps(message)))
                last[name] = (r.number, report.local_state, chain)
        return rows, last

    def _report(self, number: int, process: str, text: str, read: dict) -> Report:
        """A stored report with its whole local state, rebuilt from its base
        row (read: those already rebuilt, by (number, process))."""
        report = Report.from_message(json.loads(text))
        if report.delta is not None:
            base_number = report.delta.get("base")
            base = read.get((base_number, process))
            if base is None:
                row = self.db.execute("SELECT report FROM reports WHERE snapshot = ? AND "
                                      "process = ?", (base_number, process)).fetchone()
                if row is None:
                    raise StoreError(f"{self.path}: {process}'s report of snapshot {number} "
                                     f"is changes from snapshot {base_number}'s, not stored")
                base = self._report(base_number, process, row[0], read)
            report = report.rebuilt((base_number, base.local_state))
        read[number, process] = report
        return report

    def get(self, number: int) -> SnapshotRecord | None:
        row = self.db.execute("SELECT * FROM snapshots WHERE id = ?", (number,)).fetchone()
        if row is None:
            batch = self._batch_of(number)
            return batch.record(number) if batch is not None else None
        record = _record(row)
        for a in self.db.execute("SELECT * FROM acks WHERE snapshot = ? ORDER BY slb",
                                 (number,)):
            record.acks[a[1]] = _ack(a)
        read = {}
        for _, process, report in self.db.execute(
                "SELECT * FROM reports WHERE snapshot = ? ORDER BY process", (number,)):
            record.reports[process] = self._report(number, process, report, read)
        return record

    def records(self, first: int, last: int) -> list[SnapshotRecord]:
        """Every snapshot numbered first to last that the store holds, in
        order, each whole (a batch's numbers with their schedules' bounds)."""
        found: dict[int, SnapshotRecord] = {}
        for row in self.db.execute("SELECT * FROM snapshots WHERE id BETWEEN ? AND ?",
                                   (first, last)):
            found[row[0]] = _record(row)
        for a in self.db.execute("SELECT * FROM acks WHERE snapshot BETWEEN ? AND ? "
                                 "ORDER BY slb", (first, last)):
            found[a[0]].acks[a[1]] = _ack(a)
        read = {}   # in number order, so a base in the range is rebuilt first
        for number, process, report in self.db.execute(
                "SELECT * FROM reports WHERE snapshot BETWEEN ? AND ? ORDER BY snapshot, process",
                (first, last)).fetchall():
            found[number].reports[process] = self._report(number, process, report, read)
        for row in self.db.execute("SELECT * FROM batches WHERE last >= ? AND first <= ?",
                                   (first, last)).fetchall():
            batch = self._batch_of(row[0])
            for number in batch.numbers:
                if first <= number <= last and number not in found:
                    found[number] = batch.record(number)
        return [found[n] for n in sorted(found)]

    def _batch_of(self, number: int) -> BatchRecord | None:
        """The batch whose range holds number, with its schedule answers."""
        row = self.db.execute("SELECT * FROM batches WHERE first <= ? ORDER BY first DESC "
                              "LIMIT 1", (number,)).fetchone()
        if row is None or row[1] < number:
            return None
        batch = _batch(row)
        for a in self.db.execute("SELECT * FROM batch_acks WHERE first = ? ORDER BY slb",
                                 (batch.first,)):
            batch.acks[a[1]] = _schedule_ack(a)
        return batch

    def latest(self, limit: int = 20, outcome: Outcome | None = None) -> list[SnapshotRecord]:
        """The newest snapshots first, without their acknowledgements and reports
        (but a batch's schedules, which are its snapshots' only record)."""
        where, args = ("WHERE outcome = ?", (outcome.value,)) if outcome else ("", ())
        rows = self.db.execute(f"SELECT * FROM snapshots {where} ORDER BY id DESC LIMIT ?",
                               (*args, limit))
        found = [_record(row) for row in rows]
        for row in self.db.execute(f"SELECT * FROM batches {where} ORDER BY first DESC",
                                   args).fetchall():
            if len(found) == limit and row[1] < found[-1].number:
                break   # this batch and every older one: older than all found
            batch = self._batch_of(row[0])
            own = {n for (n,) in self.db.execute(
                "SELECT id FROM snapshots WHERE id BETWEEN ? AND ?", (row[0], row[1]))}
            newest = [n for n in itertools.islice(
                (n for n in reversed(batch.numbers) if n not in own), limit)]
            found = sorted(found + [batch.record(n) for n in newest],
                           key=lambda r: r.number, reverse=True)[:limit]
        return found

    def with_reports(self, outcome: Outcome) -> list[int]:
        """The numbers of the snapshots with that verdict that hold in-group
        reports, newest first (what a restore needs)."""
        return [number for (number,) in self.db.execute(
            "SELECT DISTINCT id FROM snapshots JOIN reports ON reports.snapshot = id "
            "WHERE outcome = ? ORDER BY id DESC", (outcome.value,))]

    def counts(self) -> dict[Outcome, int]:
        counts = dict.fromkeys(Outcome, 0)
        for outcome, n in self.db.execute(
                "SELECT outcome, COUNT(*) FROM snapshots GROUP BY outcome"):
            counts[Outcome(outcome)] = n
        for outcome, n in self.db.execute(
                "SELECT outcome, SUM(last - first + 1 - singles) FROM batches GROUP BY outcome"):
            counts[Outcome(outcome)] += n
        return counts


def _clock(estimate: Estimate | None) -> tuple:
    return ((estimate.offset_us, estimate.error_us, estimate.source) if estimate
            else (None, None, None))


def _batch(row) -> BatchRecord:
    (first, last, _, mode, rule, tau_us, slbs, started, finished, activate, spacing, wall,
     outcome, reason, decided_by, margin) = row
    return BatchRecord(first, last - first + 1, Mode(mode), rule, tau_us, json.loads(slbs),
                       started, wall, activate, spacing, finished,
                       verdict=Verdict(Outcome(outcome), reason, decided_by, margin))


def _schedule_ack(row) -> ScheduleAck:
    (_, slb, status, attempts, sent, received, before, after, now, slb_id, flags, activate_at,
     count, spacing, track, late_last, offset, error, source) = row
    body = ControlBody(0, 0, before, after, now, 0, 0, 0, slb_id, flags, activate_at)
    clock = Estimate(offset, error, 0, source) if offset is not None else None
    return ScheduleAck(slb, Status[status], body, Batch(count, spacing, 0, track, late_last),
                       sent, received, attempts, clock)


def _record(row) -> SnapshotRecord:
    (number, _, mode, rule, tau_us, slbs, started, finished, activate, wall, outcome,
     reason, decided_by, margin, retake_of) = row
    return SnapshotRecord(number, Mode(mode), rule, tau_us, json.loads(slbs), started, wall,
                          finished, verdict=Verdict(Outcome(outcome), reason, decided_by, margin),
                          retake_of=retake_of, activate_us=activate)


def _ack(row) -> Ack:
    (_, slb, status, record_id, attempts, sent, received, before, after, now, switched,
     last_old, count, slb_id, flags, activate_at, offset, error, source) = row
    body = ControlBody(0, record_id, before, after, now, switched, last_old, count, slb_id, flags,
                       activate_at)
    clock = Estimate(offset, error, 0, source) if offset is not None else None
    return Ack(slb, Status[status], body, sent, received, attempts, clock)
