"""The durable snapshot store: one SQLite file.

Every finished snapshot is written with its acknowledgements, in-group
reports and verdict in one transaction, and the caller reports it only after
`save` returned: an accepted snapshot is never reported and then lost.  The
file is in WAL mode; `durable` (synchronous=FULL) also survives a power cut,
otherwise (NORMAL) a crash of the controller only.

Snapshot numbers are reserved in blocks before they are used (`reserve`),
so after a crash and restart the next number continues after every number
that may have reached a switch.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from beaver.p4src.wire import ControlBody, Status

from .clock import Estimate
from .oob import Report
from .record import Ack, Mode, Outcome, SnapshotRecord, Verdict

SCHEMA_VERSION = 2   # 2: timed initiation and clock sources
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
CREATE TABLE IF NOT EXISTS reports (
    snapshot INTEGER NOT NULL REFERENCES snapshots (id),
    process  TEXT NOT NULL,
    report   TEXT NOT NULL,            -- the out-of-band report message, JSON
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
            if version is None:
                self._set_meta("schema_version", SCHEMA_VERSION)
            elif version != SCHEMA_VERSION:
                raise StoreError(f"{self.path}: store schema {version}, this controller "
                                 f"reads {SCHEMA_VERSION}")
            self._reserved = self._meta("reserved_through") or 0
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

    def save(self, records: list[SnapshotRecord]):
        """Commits finished snapshots in one transaction."""
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
                  a.body.activate_at,
                  a.clock.offset_us if a.clock else None,
                  a.clock.error_us if a.clock else None,
                  a.clock.source if a.clock else None)
                 for r in records for a in r.acks.values()])
            self.db.executemany(
                "INSERT INTO reports VALUES (?,?,?)",
                [(r.number, name, json.dumps(report.to_message()))
                 for r in records for name, report in r.reports.items()])

    def get(self, number: int) -> SnapshotRecord | None:
        row = self.db.execute("SELECT * FROM snapshots WHERE id = ?", (number,)).fetchone()
        if row is None:
            return None
        record = _record(row)
        for a in self.db.execute("SELECT * FROM acks WHERE snapshot = ? ORDER BY slb",
                                 (number,)):
            record.acks[a[1]] = _ack(a)
        for _, process, report in self.db.execute(
                "SELECT * FROM reports WHERE snapshot = ? ORDER BY process", (number,)):
            record.reports[process] = Report.from_message(json.loads(report))
        return record

    def latest(self, limit: int = 20, outcome: Outcome | None = None) -> list[SnapshotRecord]:
        """The newest snapshots first, without their acknowledgements and reports."""
        where, args = ("WHERE outcome = ?", (outcome.value,)) if outcome else ("", ())
        rows = self.db.execute(f"SELECT * FROM snapshots {where} ORDER BY id DESC LIMIT ?",
                               (*args, limit))
        return [_record(row) for row in rows]

    def counts(self) -> dict[Outcome, int]:
        counts = dict.fromkeys(Outcome, 0)
        for outcome, n in self.db.execute(
                "SELECT outcome, COUNT(*) FROM snapshots GROUP BY outcome"):
            counts[Outcome(outcome)] = n
        return counts


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
