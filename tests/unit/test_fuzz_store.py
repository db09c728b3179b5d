"""Fuzzing the store's readers (control/store.py) with Hypothesis: whatever
the file holds, every reader gives an answer or one StoreError of one line
(and `beaver snapshot list` and `show` an answer or one line); nothing else
escapes, and opening writes nothing into a file that is no store.

Three sources of files: random bytes (now and then behind SQLite's
header); a real store with bytes overwritten; and a real store with rows
added or replaced by rows of random values (SQLite keeps any value in any
column), many of them near the real ones."""
import io
import json
import sqlite3
from contextlib import redirect_stdout

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from beaver.control.cli.common import USER_ERRORS, CliError
from beaver.control.cli.main import build_parser
from beaver.control.engine.record import Outcome
from beaver.control.store import SnapshotStore, StoreError
from beaver.traffic.oob.protocol import ChannelState, Report

from tests.unit.test_store import batch, record

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow])
NUMBERS = range(0, 14)   # every number the example store holds, and a few around


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    """A real store: snapshots with acknowledgements and reports (whole and
    as changes), and a batch with singles; checkpointed into one file."""
    path = tmp_path_factory.mktemp("fuzz") / "example.db"
    store = SnapshotStore(path)

    def report(n, keys):
        return Report("p1", n, True, "mark", n, {"keys": keys},
                      {"p2": ChannelState(n, n, [{"id": f"m{n}"}])}, n, n - 1)
    store.save([record(1, reports={"p1": report(1, {"a": 1})}),
                record(2, Outcome.REJECTED, reports={"p1": report(2, {"a": 2})}),
                record(3, reports={"p1": report(3, {"a": 2, "b": 3})})],
               [batch(4, 8, singles=(6,))])
    store.reserve(1024)
    store.close()
    return path


def read_everything(path):
    """Every reader of the store, each on every number around."""
    store = SnapshotStore(path, read_only=True)
    try:
        assert isinstance(store.reserved_through, int)
        store.counts()
        store.latest(20)
        store.latest(3, Outcome.ACCEPTED)
        store.with_reports(Outcome.ACCEPTED)
        store.records(NUMBERS.start, NUMBERS.stop)
        for n in NUMBERS:
            store.get(n)
    finally:
        store.close()


PARSER = build_parser()   # once: building it takes longer than a command here


def shown_or_one_line(*argv):
    """A `beaver snapshot` command as main() runs it: an answer, or a user's
    error of one line (whatever else it raises fails the test)."""
    args = PARSER.parse_args(["snapshot", *map(str, argv)])
    with redirect_stdout(io.StringIO()):
        try:
            args.run(args)
        except (CliError, *USER_ERRORS) as e:
            assert "\n" not in str(e), str(e)


def answers_or_one_line(path):
    try:
        read_everything(path)
    except StoreError as e:
        assert str(e).startswith(f"{path}: ") and "\n" not in str(e), str(e)


def fresh(tmp_path, content: bytes):
    path = tmp_path / "s.db"
    for old in tmp_path.glob("s.db*"):
        old.unlink()
    path.write_bytes(content)
    return path


HEADER = b"SQLite format 3\x00"


@FUZZ
@given(st.booleans(), st.binary(max_size=4096))
def test_random_bytes_are_refused_in_one_line_and_left_unchanged(tmp_path, header, content):
    content = HEADER + content if header else content
    path = fresh(tmp_path, content)
    answers_or_one_line(path)
    for durable in (True, False):   # opening for writing, as a run would
        try:
            SnapshotStore(path, durable).close()
        except StoreError as e:
            assert "\n" not in str(e)
        else:
            assert content == b"", "only an empty file becomes a store"
    if content:
        assert path.read_bytes() == content
        # SQLite's side files, for what claims to be a database in WAL mode
        side = {p.name for p in tmp_path.iterdir()} - {path.name}
        assert not side or header and side <= {"s.db-shm", "s.db-wal"}, side


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 1 << 20), st.binary(min_size=1, max_size=64)),
                min_size=1, max_size=4))
def test_a_store_with_bytes_overwritten_is_read_or_refused_in_one_line(tmp_path, example,
                                                                      writes):
    content = bytearray(example.read_bytes())
    for at, data in writes:
        at %= len(content)
        content[at:at + len(data)] = data
    answers_or_one_line(fresh(tmp_path, bytes(content)))


COLUMNS = {"snapshots": 15, "acks": 19, "batches": 16, "batch_acks": 19, "reports": 3}
REPORT = {"v": 1, "op": "report", "process": "p1", "snapshot_id": 5, "taken": True}
NEAR = st.sampled_from([
    0, 1, 2, 3, 4, 5, 6, 11, 12, 1023, -1, (1 << 63) - 1, -(1 << 63), 0.5, float("nan"),
    "ogm", "mgm", "accepted", "rejected", "OK", "STALE", "fine", "s1", "p1", "probe", "",
    "[]", '["s1"]', "[1]", "{}", "null", "[" * 5000, b"\x00",
    json.dumps(REPORT), json.dumps({**REPORT, "channels": []}),
    json.dumps({**REPORT, "delta": {"base": 5, "changes": {}}}),
    json.dumps({**REPORT, "delta": {"base": 3, "changes": {"x": 1}}}),
    json.dumps({**REPORT, "delta": "base"}), json.dumps({**REPORT, "channels": {"p2": 1}})])
NOT_NULL = st.one_of(NEAR, st.integers(-(1 << 63), (1 << 63) - 1), st.floats(),
                     st.text(max_size=16), st.binary(max_size=8))
SQL_VALUE = st.one_of(NOT_NULL, st.none())


@pytest.fixture(scope="module")
def example_rows(example) -> dict[str, list[tuple]]:
    db = sqlite3.connect(f"{example.as_uri()}?mode=ro", uri=True)
    try:
        return {table: db.execute(f"SELECT * FROM {table}").fetchall() for table in COLUMNS}
    finally:
        db.close()


@st.composite
def changed_rows(draw, rows: dict[str, list[tuple]]):
    """Rows of the example, each with some columns replaced, to insert or
    replace (a changed primary key adds a row)."""
    changes = []
    for _ in range(draw(st.integers(1, 4))):
        table = draw(st.sampled_from(list(COLUMNS)))
        row = list(draw(st.sampled_from(rows[table])))
        for column in draw(st.lists(st.integers(0, COLUMNS[table] - 1), min_size=1,
                                    max_size=3)):
            row[column] = draw(SQL_VALUE)
        changes.append((table, row))
    return changes


@FUZZ
@given(st.data())
def test_a_store_with_random_rows_is_read_or_refused_in_one_line(tmp_path, example,
                                                                 example_rows, data):
    path = fresh(tmp_path, example.read_bytes())
    changes = data.draw(changed_rows(example_rows))
    if data.draw(st.booleans()):
        changes.append(("meta", ["reserved_through", data.draw(SQL_VALUE)]))
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")   # (no fsync: the test is its only reader)
    for table, row in changes:
        try:
            db.execute(f"INSERT OR REPLACE INTO {table} VALUES ({','.join('?' * len(row))})",
                       row)
        except sqlite3.IntegrityError:
            pass   # (NULL where the schema forbids it: no store holds that row)
    db.commit()
    db.close()
    answers_or_one_line(path)
    shown_or_one_line("list", "--store", path)
    shown_or_one_line("show", data.draw(st.sampled_from(NUMBERS)), "--store", path)


INT = st.one_of(st.integers(-(1 << 63), (1 << 63) - 1), st.integers(-3, 12))
REAL = st.one_of(st.floats(allow_nan=False), INT)   # SQLite stores NaN as NULL
TEXT = st.text(max_size=12)


def maybe(kind):
    return st.one_of(st.none(), kind)


def enum(*values):
    return st.one_of(st.sampled_from(values), TEXT)


MODE, OUTCOME = enum("ogm", "mgm", "blocking"), enum("accepted", "rejected", "incomplete")
STATUS = enum("OK", "ALREADY", "STALE")
NAMES = st.one_of(st.lists(TEXT, max_size=3).map(json.dumps), TEXT)
CLOCK = (maybe(REAL), maybe(REAL), maybe(TEXT))
TYPED = {   # each column of the tables, in order (the first, the key, is set by the test)
    "snapshots": (INT, MODE, TEXT, INT, NAMES, INT, maybe(INT), maybe(INT), REAL, OUTCOME,
                  TEXT, TEXT, maybe(REAL), maybe(INT)),
    "acks": (STATUS, *[INT] * 13, *CLOCK),
    "batches": (st.integers(3, 1100), INT, MODE, TEXT, INT, NAMES, INT, maybe(INT), INT, INT,
                REAL, OUTCOME, TEXT, TEXT, maybe(REAL)),
    "batch_acks": (STATUS, *[INT] * 13, *CLOCK),
}
KEY = {"snapshots": [2], "acks": [2, "s1"], "batches": [4], "batch_acks": [4, "s1"]}


@FUZZ
@given(st.sampled_from(list(TYPED)), st.data())
def test_any_row_of_the_right_types_is_shown_or_refused_in_one_line(tmp_path, example, table,
                                                                  data):
    """A row whose every column has its declared type (SQLite's columns keep
    any), values drawn from all of the type's: what the readers, `list` and
    `show` make of it."""
    path = fresh(tmp_path, example.read_bytes())
    row = KEY[table] + [data.draw(kind) for kind in TYPED[table]]
    db = sqlite3.connect(path)
    db.execute("PRAGMA synchronous=OFF")   # (no fsync: the test is its only reader)
    db.execute(f"INSERT OR REPLACE INTO {table} VALUES ({','.join('?' * len(row))})", row)
    db.commit()
    db.close()
    answers_or_one_line(path)
    shown_or_one_line("list", "--store", path)
    shown_or_one_line("show", KEY[table][0] + (table in ("batches", "batch_acks")), "--store",
                      path)


def test_the_example_itself_reads_whole(tmp_path, example):
    """The fuzzed store is a real one: every reader answers it."""
    path = fresh(tmp_path, example.read_bytes())
    read_everything(path)
    store = SnapshotStore(path, read_only=True)
    assert store.get(3).reports["p1"].local_state == {"keys": {"a": 2, "b": 3}}
    assert store.get(7).batch == range(4, 12) and store.reserved_through == 1024
    store.close()
