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

A process's reports of a batch's numbers are kept by distinct state: one row
for the numbers first..last whose report is the same but for its ID
(traffic/oob/cuts.py), `get` and `records` give each number its own.

A process's report is kept as what changed since its report in the snapshot
saved before (traffic/oob/deltas.py), and whole every CHAIN_MOST-th time and
at the first of each store object: reading one rebuilds it from at most
CHAIN_MOST rows, and every reader (the checker, a restore) gets whole states.

Snapshot numbers are reserved in blocks before they are used (`reserve`),
so after a crash and restart the next number continues after every number
that may have reached a switch.  Each reservation is checkpointed into the
main file, so that even a lost `-wal` file cannot send the numbering back.

A file that is not a Beaver store is refused before anything is written
to it, and a store opened `read_only` (the commands that only read) is
never written: one that can be read but not written opens too.  Every
SQLite error and every damaged row ends in a StoreError, one line.
"""
from __future__ import annotations

import itertools
import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path

from beaver.p4src.wire import SCHEDULE_MAX, Batch, ControlBody, Status

from beaver.control.slbs.clock import Estimate
from beaver.traffic.oob.protocol import ProtocolError, Report
from beaver.control.engine.record import (Ack, BatchRecord, Mode, Outcome, ReportRange,
                                          ScheduleAck, SnapshotRecord, Verdict)

SCHEMA_VERSION = 5   # 2: timed initiation and clock sources; 3: batches as ranges;
                     # 4: reports as changes from an earlier one (a 3 would misread them);
                     # 5: a report for a range of a batch's numbers (a 4 would lose them)
CHAIN_MOST = 16      # reports of a process kept as changes in a row, at most
NUMBER_MAX = (1 << 63) - 1   # SQLite's largest integer: no snapshot is numbered higher
TABLES = ("meta", "snapshots", "acks", "batches", "batch_acks", "reports")
SQLITE_HEADER = b"SQLite format 3\x00"   # how every SQLite database file begins
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
    last     INTEGER,                  -- NULL: snapshot's own; else the report of
                                       -- every number snapshot..last of its batch
    PRIMARY KEY (snapshot, process)
);
"""


class StoreError(Exception):
    """The store file cannot be opened or read, or is not a Beaver snapshot store."""


# What decoding a damaged row can raise: a column of the wrong type or value,
# JSON that is not what was written, or nested too deeply to decode.
DAMAGED = (ValueError, TypeError, KeyError, AttributeError, RecursionError)


class SnapshotStore:
    def __init__(self, path: str | Path, durable: bool = True, read_only: bool = False):
        """read_only: for what only reads; nothing is written (and a store this
        user may not write opens)."""
        self.path = Path(path)
        self.read_only = read_only
        # process -> (number, local state, changes in a row) of its last report saved
        self._last: dict[str, tuple[int, object, int]] = {}
        self.db = None
        try:
            new = self._sqlite_file()   # refuses what is no SQLite file before SQLite opens it
            self.db = self._connect()
            version = self._schema(new)   # and another program's database before any write
            if not read_only:
                if version is None:
                    # one transaction, before WAL: the whole schema is in the main
                    # file from the start, or none of it
                    self.db.executescript(f"BEGIN; {SCHEMA}; INSERT INTO meta VALUES "
                                          f"('schema_version', {SCHEMA_VERSION}); COMMIT;")
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
                if version in (3, 4):   # their tables are 5's but for reports' `last`
                    add = "" if self._has_ranges() else \
                        "ALTER TABLE reports ADD COLUMN last INTEGER;"
                    self.db.executescript(f"BEGIN; {add} UPDATE meta SET value = "
                                          f"{SCHEMA_VERSION} WHERE key = 'schema_version'; "
                                          "COMMIT;")
            # an old store opened to read only: its reports are each a snapshot's own
            self._ranges = self._has_ranges()
            self._reserved = self._meta("reserved_through") or 0
            if not isinstance(self._reserved, int) or self._reserved < 0:
                raise StoreError(f"{self.path}: damaged store: reserved_through is "
                                 f"{_short(self._reserved)}")
        except sqlite3.OperationalError as e:   # locked, unreadable, read-only, ...
            self._close_quietly()
            raise StoreError(f"{self.path}: cannot open the snapshot store: {e}") from None
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:   # not SQLite, or damaged
            self._close_quietly()
            raise StoreError(f"{self.path}: not a snapshot store: {_short(str(e), 160)}") \
                from None
        except StoreError:
            self._close_quietly()
            raise

    def _sqlite_file(self) -> bool:
        """Whether the store is new (no file, or an empty one); StoreError for a
        file that does not begin as every SQLite database does."""
        try:
            with open(self.path, "rb") as f:
                start = f.read(len(SQLITE_HEADER))
        except FileNotFoundError:
            return True
        except OSError as e:
            raise StoreError(f"{self.path}: cannot open the snapshot store: {e.strerror}") \
                from None
        if start and start != SQLITE_HEADER:
            raise StoreError(f"{self.path}: not a snapshot store: not an SQLite file; "
                             "nothing was written")
        return not start

    def _connect(self) -> sqlite3.Connection:
        # one user at a time, but not always the thread that opened it
        options = dict(isolation_level=None, check_same_thread=False)
        if not self.read_only:
            return sqlite3.connect(self.path, **options)
        uri = self.path.absolute().as_uri()
        db = sqlite3.connect(f"{uri}?mode=ro", uri=True, **options)
        try:
            db.execute("SELECT 1 FROM sqlite_master").fetchall()
        except sqlite3.OperationalError as e:
            # A store in WAL mode is read through its -shm file, which a user who
            # may not write the folder cannot make.  Without a -wal file the main
            # file holds every commit, and it can be read as it is.
            wal = self.path.with_name(self.path.name + "-wal")
            if e.sqlite_errorname != "SQLITE_READONLY_DIRECTORY" or wal.exists():
                db.close()
                raise
            db.close()
            db = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, **options)
        return db

    def _schema(self, new: bool) -> int | None:
        """The store's schema version; None for a new file, to be made a
        store.  StoreError for any other file."""
        tables = {name for (name,) in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if new and not tables and not self.read_only:
            return None
        missing = [t for t in TABLES if t not in tables]
        if missing:
            held = f"its tables: {', '.join(sorted(tables)[:8])}" if tables else "no tables"
            raise StoreError(f"{self.path}: not a snapshot store: no table {missing[0]} "
                             f"({held}); nothing was written")
        version = self._meta("schema_version")
        if version not in (3, 4, SCHEMA_VERSION):
            raise StoreError(f"{self.path}: store schema {_short(version)}, this controller "
                             f"reads {SCHEMA_VERSION}")
        return version

    def _has_ranges(self) -> bool:
        """Whether reports have the column `last` (from schema 5)."""
        return "last" in {row[1] for row in self.db.execute("PRAGMA table_info(reports)")}

    def close(self):
        self.db.close()

    def _close_quietly(self):
        if self.db is not None:
            self.db.close()

    @contextmanager
    def _sqlite(self):
        """Whatever SQLite raises, as one StoreError (and text it cannot
        decode: a damaged file)."""
        try:
            yield
        except sqlite3.Error as e:
            # one line: SQLite quotes the damaged text it could not decode
            raise StoreError(f"{self.path}: {' '.join(str(e).split())[:200]}") from None
        except UnicodeDecodeError as e:
            raise StoreError(f"{self.path}: damaged store: text that is not UTF-8 ({e.reason} "
                             f"at byte {e.start})") from None

    def _decode(self, table: str, decode, row):
        """decode(row), or StoreError naming the damaged row."""
        try:
            return decode(row)
        except DAMAGED as e:
            key = _short(row[0]) if row else "?"
            raise StoreError(f"{self.path}: damaged row {key} of {table}: "
                             f"{_short(str(e), 160)}") from None

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
        """Records that numbers up to `through` may be used: committed, and in
        the main file, on return."""
        if through <= self._reserved:
            return
        if through > NUMBER_MAX:
            raise StoreError(f"{self.path}: snapshot numbers end at {NUMBER_MAX}")
        with self._sqlite():
            self._set_meta("reserved_through", through)
            # A checkpoint, so that the reservation outlives a lost -wal file
            # (rare: one per block of numbers).  FULL waits for readers.
            busy, _, _ = self.db.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
        if busy:
            raise StoreError(f"{self.path}: the reservation of numbers up to {through} could "
                             "not reach the main file: a reader holds the store")
        self._reserved = through

    # -- snapshots ------------------------------------------------------------

    def save(self, records: list[SnapshotRecord], batches: list[BatchRecord] = ()):
        """Commits finished snapshots, and batches with their own, in one
        transaction."""
        records = list(records) + [r for b in batches for r in b.singles.values()]
        reports, last = self._report_rows(records, batches)
        with self._sqlite(), self.db:
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
            self.db.executemany("INSERT INTO reports VALUES (?,?,?,?)", reports)
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

    def _report_rows(self, records: list[SnapshotRecord], batches: list[BatchRecord]
                     ) -> tuple[list[tuple], dict]:
        """The reports' rows (a batch's as ranges), each as changes from its
        process's last report saved before it when the chain allows; and the
        last ones then."""
        rows = [(r.number, name, report, None) for r in records
                for name, report in r.reports.items()]
        rows += [(span.first, name, span.report, span.last) for b in batches
                 for name, spans in b.reports.items() for span in spans]
        last, out = dict(self._last), []
        for number, name, report, through in sorted(rows, key=lambda row: row[0]):
            before = last.get(name)
            if not report.taken:
                out.append((number, name, json.dumps(report.to_message()), through))
                continue
            if before is not None and before[0] < number and before[2] < CHAIN_MOST:
                message, chain = report.to_message(before[:2]), before[2] + 1
            else:
                message, chain = report.to_message(), 0
            out.append((number, name, json.dumps(message), through))
            last[name] = (number, report.local_state, chain)
        return out, last

    def _report(self, row: tuple, read: dict, chain: int = 0) -> Report:
        """A stored report with its whole local state, rebuilt from its base
        row (read: those already rebuilt, by (number, process); chain: reports
        as changes read in a row to reach this one)."""
        number, process, report = self._decode("reports", _report_row, row)
        if report.delta is not None:
            base_number = report.delta.get("base") if isinstance(report.delta, dict) else None
            if not isinstance(base_number, int) or not 0 < base_number < number \
                    or chain >= CHAIN_MOST:
                raise StoreError(f"{self.path}: {process}'s report of snapshot {number} is "
                                 f"changes from {_short(base_number)}: not an earlier report "
                                 "of a chain the store writes")
            base = read.get((base_number, process))
            if base is None:
                base_row = self.db.execute("SELECT * FROM reports WHERE snapshot = ? AND "
                                           "process = ?", (base_number, process)).fetchone()
                if base_row is None:
                    raise StoreError(f"{self.path}: {process}'s report of snapshot {number} "
                                     f"is changes from snapshot {base_number}'s, not stored")
                base = self._report(base_row, read, chain + 1)
            try:
                report = report.rebuilt((base_number, base.local_state))
            except ProtocolError as e:
                raise StoreError(f"{self.path}: {process}'s report of snapshot {number}: "
                                 f"{_short(str(e), 160)}") from None
        read[number, process] = report
        return report

    def get(self, number: int) -> SnapshotRecord | None:
        if not 0 < number <= NUMBER_MAX:
            return None   # never stored: such a number is never reserved
        with self._sqlite():
            row = self.db.execute("SELECT * FROM snapshots WHERE id = ?", (number,)).fetchone()
            if row is None:
                batch = self._batch_of(number)
                if batch is None:
                    return None
                return self._with_reports(batch, number, number, {}).record(number)
            record = self._decode("snapshots", _record, row)
            for a in self.db.execute("SELECT * FROM acks WHERE snapshot = ? ORDER BY slb",
                                     (number,)):
                ack = self._decode("acks", _ack, a)
                record.acks[ack.slb] = ack
            read = {}
            for r in self.db.execute(f"SELECT * FROM reports WHERE snapshot = ? {self._own} "
                                     "ORDER BY process", (number,)).fetchall():
                report = self._report(r, read)
                record.reports[r[1]] = report
        return record

    def records(self, first: int, last: int) -> list[SnapshotRecord]:
        """Every snapshot numbered first to last that the store holds, in
        order, each whole (a batch's numbers with their schedules' bounds)."""
        first, last = max(first, 1), min(last, NUMBER_MAX)
        if first > last:
            return []
        found: dict[int, SnapshotRecord] = {}
        with self._sqlite():
            for row in self.db.execute("SELECT * FROM snapshots WHERE id BETWEEN ? AND ?",
                                       (first, last)):
                record = self._decode("snapshots", _record, row)
                found[record.number] = record
            for a in self.db.execute("SELECT * FROM acks WHERE snapshot BETWEEN ? AND ? "
                                     "ORDER BY slb", (first, last)):
                ack = self._decode("acks", _ack, a)
                self._owner(found, a[0], "acks").acks[ack.slb] = ack
            read = {}   # in number order, so a base in the range is rebuilt first
            for r in self.db.execute(f"SELECT * FROM reports WHERE snapshot BETWEEN ? AND ? "
                                     f"{self._own} ORDER BY snapshot, process",
                                     (first, last)).fetchall():
                self._owner(found, r[0], "reports").reports[r[1]] = self._report(r, read)
            for row in self.db.execute("SELECT * FROM batches WHERE last >= ? AND first <= ?",
                                       (first, last)).fetchall():
                batch = self._with_acks(self._decode("batches", _batch, row))
                self._with_reports(batch, first, last, read)
                for number in range(max(first, batch.first),
                                    min(last, batch.numbers[-1]) + 1):
                    if number not in found:
                        found[number] = batch.record(number)
        return [found[n] for n in sorted(found)]

    @property
    def _own(self) -> str:
        """The condition on reports for a snapshot's own rows (not a range's)."""
        return "AND last IS NULL" if self._ranges else ""

    def _with_reports(self, batch: BatchRecord, first: int, last: int, read: dict
                      ) -> BatchRecord:
        """batch with the report ranges that hold any of its numbers first..last."""
        if not self._ranges:
            return batch
        for r in self.db.execute("SELECT * FROM reports WHERE snapshot BETWEEN ? AND ? AND "
                                 "last >= ? ORDER BY snapshot, process",
                                 (batch.first, min(last, batch.numbers[-1]), first)).fetchall():
            through = r[3]
            if not (isinstance(through, int) and r[0] <= through <= batch.numbers[-1]):
                raise StoreError(f"{self.path}: damaged row {_short(r[0])} of reports: a range "
                                 f"to {_short(through)}, not within batch {batch.first}-"
                                 f"{batch.numbers[-1]}")
            spans = batch.reports.setdefault(r[1], [])
            if spans and spans[-1].last >= r[0]:
                raise StoreError(f"{self.path}: damaged row {_short(r[0])} of reports: "
                                 f"{_short(r[1])}'s ranges overlap")
            spans.append(ReportRange(r[0], through, self._report(r, read)))
        return batch

    def _owner(self, found: dict[int, SnapshotRecord], number, table: str) -> SnapshotRecord:
        """The snapshot a row of table belongs to, which must be stored."""
        if number not in found:
            raise StoreError(f"{self.path}: damaged store: {table} of snapshot "
                             f"{_short(number)}, which has no row")
        return found[number]

    def _batch_of(self, number: int) -> BatchRecord | None:
        """The batch whose range holds number, with its schedule answers."""
        row = self.db.execute("SELECT * FROM batches WHERE first <= ? ORDER BY first DESC "
                              "LIMIT 1", (number,)).fetchone()
        if row is None:
            return None
        batch = self._decode("batches", _batch, row)
        return self._with_acks(batch) if number in batch.numbers else None

    def _with_acks(self, batch: BatchRecord) -> BatchRecord:
        for a in self.db.execute("SELECT * FROM batch_acks WHERE first = ? ORDER BY slb",
                                 (batch.first,)):
            ack = self._decode("batch_acks", _schedule_ack, a)
            batch.acks[ack.slb] = ack
        return batch

    def latest(self, limit: int = 20, outcome: Outcome | None = None) -> list[SnapshotRecord]:
        """The newest snapshots first, without their acknowledgements and reports
        (but a batch's schedules, which are its snapshots' only record)."""
        limit = min(limit, NUMBER_MAX)
        if limit < 1:
            return []
        where, args = ("WHERE outcome = ?", (outcome.value,)) if outcome else ("", ())
        with self._sqlite():
            rows = self.db.execute(f"SELECT * FROM snapshots {where} ORDER BY id DESC LIMIT ?",
                                   (*args, limit))
            found = [self._decode("snapshots", _record, row) for row in rows]
            for row in self.db.execute(f"SELECT * FROM batches {where} ORDER BY first DESC",
                                       args).fetchall():
                batch = self._decode("batches", _batch, row)
                if len(found) == limit and batch.numbers[-1] < found[-1].number:
                    break   # this batch and every older one: older than all found
                self._with_acks(batch)
                own = {n for (n,) in self.db.execute(
                    "SELECT id FROM snapshots WHERE id BETWEEN ? AND ?",
                    (batch.first, batch.numbers[-1]))}
                newest = itertools.islice(
                    (n for n in reversed(batch.numbers) if n not in own), limit)
                found = sorted(found + [batch.record(n) for n in newest],
                               key=lambda r: r.number, reverse=True)[:limit]
        return found

    def with_reports(self, outcome: Outcome) -> list[int]:
        """The numbers of the snapshots with that verdict that hold in-group
        reports, newest first (what a restore needs)."""
        with self._sqlite():
            numbers = {number for (number,) in self.db.execute(
                "SELECT DISTINCT id FROM snapshots JOIN reports ON reports.snapshot = id "
                "WHERE outcome = ?", (outcome.value,))}
            if self._ranges:   # a batch's numbers with its verdict, in a range of reports
                for first, last in self.db.execute(
                        "SELECT DISTINCT snapshot, last FROM reports WHERE last IS NOT NULL "
                        "AND (SELECT outcome FROM batches WHERE batches.first <= snapshot "
                        "ORDER BY batches.first DESC LIMIT 1) = ?", (outcome.value,)).fetchall():
                    if not (type(first) is int and type(last) is int
                            and 0 <= last - first < SCHEDULE_MAX):
                        raise StoreError(f"{self.path}: damaged row {_short(first)} of reports: "
                                         f"a range to {_short(last)}, not a batch's")
                    numbers.update(range(first, last + 1))   # never a single's: save keeps
                                                            # ranges to the batch's verdict
            return sorted(numbers, reverse=True)

    def counts(self) -> dict[Outcome, int]:
        counts = dict.fromkeys(Outcome, 0)
        with self._sqlite():
            for row in self.db.execute(
                    "SELECT outcome, COUNT(*) FROM snapshots GROUP BY outcome"):
                outcome, n = self._decode("snapshots", _count, row)
                counts[outcome] += n
            for row in self.db.execute("SELECT outcome, SUM(last - first + 1 - singles) "
                                       "FROM batches GROUP BY outcome"):
                outcome, n = self._decode("batches", _count, row)
                counts[outcome] += n
        return counts


def _short(value, most: int = 40) -> str:
    """A stored value in an error line: one line, not too long."""
    text = value if isinstance(value, str) else repr(value)
    text = " ".join(text.split())
    return text if len(text) <= most else text[:most - 3] + "..."


def _clock(estimate: Estimate | None) -> tuple:
    return ((estimate.offset_us, estimate.error_us, estimate.source) if estimate
            else (None, None, None))


# -- decoding rows: SQLite keeps any value in any column, so each is checked ----

INT, REAL, TEXT, NONE = (int,), (int, float), (str,), (type(None),)


def _typed(row: tuple, *kinds: tuple) -> tuple:
    if len(row) != len(kinds):
        raise ValueError(f"{len(row)} columns, expected {len(kinds)}")
    for i, (value, kind) in enumerate(zip(row, kinds), start=1):
        if not isinstance(value, kind):
            raise ValueError(f"column {i} holds {_short(value)}")
    return row


def _names(text: str) -> list[str]:
    """A JSON list of names (the SLBs of a snapshot)."""
    names = json.loads(text)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"not a list of names: {_short(text)}")
    return names


def _estimate(offset, error, source) -> Estimate | None:
    if offset is None and error is None and source is None:
        return None
    if offset is None or error is None:
        raise ValueError("a clock estimate without its offset or error")
    return Estimate(offset, error, 0, source)


def _count(row) -> tuple[Outcome, int]:
    outcome, n = _typed(row, TEXT, INT)
    return Outcome(outcome), n


def _batch(row) -> BatchRecord:
    (first, last, singles, mode, rule, tau_us, slbs, started, finished, activate, spacing,
     wall, outcome, reason, decided_by, margin) = _typed(
        row, INT, INT, INT, TEXT, TEXT, INT, TEXT, INT, INT + NONE, INT, INT, REAL, TEXT,
        TEXT, TEXT, REAL + NONE)
    if not 1 <= last - first + 1 <= SCHEDULE_MAX or not 0 <= singles <= last - first + 1:
        raise ValueError(f"a range {first}-{last} with {singles} singles: not a schedule's")
    return BatchRecord(first, last - first + 1, Mode(mode), rule, tau_us, _names(slbs),
                       started, wall, activate, spacing, finished,
                       verdict=Verdict(Outcome(outcome), reason, decided_by, margin))


def _schedule_ack(row) -> ScheduleAck:
    (_, slb, status, attempts, sent, received, before, after, now, slb_id, flags, activate_at,
     count, spacing, track, late_last, offset, error, source) = _typed(
        row, INT, TEXT, TEXT, *[INT] * 13, REAL + NONE, REAL + NONE, TEXT + NONE)
    body = ControlBody(0, 0, before, after, now, 0, 0, 0, slb_id, flags, activate_at)
    return ScheduleAck(slb, Status[status], body, Batch(count, spacing, 0, track, late_last),
                       sent, received, attempts, _estimate(offset, error, source))


def _record(row) -> SnapshotRecord:
    (number, _, mode, rule, tau_us, slbs, started, finished, activate, wall, outcome,
     reason, decided_by, margin, retake_of) = _typed(
        row, INT, INT, TEXT, TEXT, INT, TEXT, INT, INT + NONE, INT + NONE, REAL, TEXT, TEXT,
        TEXT, REAL + NONE, INT + NONE)
    return SnapshotRecord(number, Mode(mode), rule, tau_us, _names(slbs), started, wall,
                          finished, verdict=Verdict(Outcome(outcome), reason, decided_by, margin),
                          retake_of=retake_of, activate_us=activate)


def _ack(row) -> Ack:
    (_, slb, status, record_id, attempts, sent, received, before, after, now, switched,
     last_old, count, slb_id, flags, activate_at, offset, error, source) = _typed(
        row, INT, TEXT, TEXT, *[INT] * 13, REAL + NONE, REAL + NONE, TEXT + NONE)
    body = ControlBody(0, record_id, before, after, now, switched, last_old, count, slb_id, flags,
                       activate_at)
    return Ack(slb, Status[status], body, sent, received, attempts,
               _estimate(offset, error, source))


def _report_row(row) -> tuple[int, str, Report]:
    number, process, text = _typed(row[:3], INT, TEXT, TEXT)   # then `last`, from schema 5
    return number, process, Report.from_message(json.loads(text))
