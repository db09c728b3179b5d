"""control/store.py keeps a batch's reports by distinct state: one row per
range of numbers, and every number comes back with its own report, whole."""
from __future__ import annotations

import sqlite3

import pytest

from beaver.control.engine.record import Outcome, ReportRange
from beaver.control.store import SCHEMA_VERSION, SnapshotStore, StoreError
from beaver.traffic.oob.protocol import ChannelState, Report
from beaver.traffic.runtime import restore

from tests.unit.test_store import batch, record


def report(process: str, number: int, state, in_flight=()) -> Report:
    return Report(process, number, True, "oob", 7, state,
                  {"p2" if process == "p1" else "p1": ChannelState(5, 4, list(in_flight))},
                  number + 50, number + 40)


def ranged_batch(first=2, count=10):
    """Numbers 2..11: p1 in two states (a message in flight from 6 on), p2 in one;
    number 9 judged apart (rejected)."""
    b = batch(first, count, singles=(9,))
    b.reports = {"p1": [ReportRange(2, 5, report("p1", 2, {"x": 1})),
                        ReportRange(6, 8, report("p1", 6, {"x": 1}, [{"id": "m1"}])),
                        ReportRange(10, 11, report("p1", 10, {"x": 2}, [{"id": "m1"}]))],
                 "p2": [ReportRange(2, 8, report("p2", 2, {"y": [1, 2]})),
                        ReportRange(10, 11, report("p2", 10, {"y": [3]}))]}
    return b


def per_number(b, number):
    return {process: r.of(number) for process, ranges in b.reports.items()
            for r in ranges if r.first <= number <= r.last}


def test_each_number_of_a_range_comes_back_with_its_own_report(tmp_path):
    store = SnapshotStore(tmp_path / "s.db")
    b = ranged_batch()
    store.save([record(1)], [b])
    assert store.db.execute("SELECT COUNT(*) FROM reports").fetchone()[0] == 5   # not 18
    for number in [2, 3, 5, 6, 8, 10, 11]:
        got = store.get(number)
        assert got.verdict.outcome is Outcome.ACCEPTED and got.batch == range(2, 12)
        assert got.reports == per_number(b, number)
        assert {r.snapshot_id for r in got.reports.values()} == {number}
    assert store.get(7).reports["p1"].channels["p2"].in_flight == [{"id": "m1"}]
    assert store.get(5).reports["p1"].channels["p2"].in_flight == []
    assert store.get(9).reports == {} and store.get(9).verdict.outcome is Outcome.REJECTED
    assert {r.number: r.reports for r in store.records(1, 20)} == \
        {1: {}, 9: {}, **{n: per_number(b, n) for n in (2, 3, 4, 5, 6, 7, 8, 10, 11)}}
    assert {r.number: r.reports for r in store.records(7, 10)} == \
        {7: per_number(b, 7), 8: per_number(b, 8), 9: {}, 10: per_number(b, 10)}
    assert store.with_reports(Outcome.ACCEPTED) == [11, 10, 8, 7, 6, 5, 4, 3, 2]
    store.close()


def test_ranges_survive_reopening_and_chain_as_changes(tmp_path):
    store = SnapshotStore(tmp_path / "s.db")
    b = ranged_batch()
    store.save([], [b])
    store.close()
    again = SnapshotStore(tmp_path / "s.db", read_only=True)
    assert {n: again.get(n).reports for n in range(2, 12) if n != 9} == \
        {n: per_number(b, n) for n in range(2, 12) if n != 9}
    # the second range of p1 is stored as changes from its first
    texts = dict(again.db.execute("SELECT snapshot, report FROM reports WHERE process = 'p1'"))
    assert '"delta"' in texts[6] and '"local_state"' in texts[2]


def test_a_store_of_schema_4_migrates_and_keeps_its_reports(tmp_path):
    path = tmp_path / "s.db"
    SnapshotStore(path).close()
    db = sqlite3.connect(path)   # as schema 4 made it: reports without `last`
    db.executescript("DROP TABLE reports; CREATE TABLE reports (snapshot INTEGER NOT NULL, "
                     "process TEXT NOT NULL, report TEXT NOT NULL, PRIMARY KEY (snapshot, "
                     "process)); UPDATE meta SET value = 4 WHERE key = 'schema_version';")
    old = report("p1", 1, {"x": 1})
    db.execute("INSERT INTO reports VALUES (1, 'p1', ?)",
               (__import__("json").dumps(old.to_message()),))
    db.execute("INSERT INTO snapshots VALUES (1, 1, 'ogm', 'fine', 300, '[]', 1, 2, NULL, 1.0, "
               "'accepted', '', 'fine', NULL, NULL)")
    db.commit()
    db.close()
    reader = SnapshotStore(path, read_only=True)   # never written: still 4
    assert reader.get(1).reports == {"p1": old} and reader.with_reports(Outcome.ACCEPTED) == [1]
    reader.close()
    store = SnapshotStore(path)
    assert store.db.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                            ).fetchone() == (SCHEMA_VERSION,)
    store.save([], [ranged_batch()])
    assert store.get(1).reports == {"p1": old} and store.get(4).reports["p2"].snapshot_id == 4
    store.close()


@pytest.mark.parametrize("damage, problem", [
    ("UPDATE reports SET last = 40 WHERE snapshot = 2 AND process = 'p2'",
     "a range to 40, not within batch 2-11"),
    ("UPDATE reports SET last = 'x' WHERE snapshot = 2 AND process = 'p2'",
     "a range to x, not within batch 2-11"),
    ("UPDATE reports SET last = 7 WHERE snapshot = 2 AND process = 'p1'",
     "p1's ranges overlap"),
])
def test_a_damaged_range_is_one_line(tmp_path, damage, problem):
    store = SnapshotStore(tmp_path / "s.db")
    store.save([], [ranged_batch()])
    store.db.execute(damage)
    with pytest.raises(StoreError, match=problem) as e:
        store.get(7)
    assert "\n" not in str(e.value)
    store.close()


def test_a_restore_reads_a_batch_numbers_state_from_its_range(tmp_path):
    path = tmp_path / "s.db"
    store = SnapshotStore(path)
    store.save([], [ranged_batch()])
    store.reserve(64)
    got = restore.load(path, 7, "p1", ["p2"])
    assert (got.state, got.in_flight, got.outcome) == ({"x": 1}, {"p2": [{"id": "m1"}]},
                                                       Outcome.ACCEPTED)
    assert restore.load(path, 5, "p1", ["p2"]).in_flight == {"p2": []}
    newest = restore.newest_restorable(store, ["p1", "p2"])
    assert newest.number == 11 and newest.reports["p2"].local_state == {"y": [3]}
    with pytest.raises(restore.RestoreRefused, match="^snapshot 9 holds no in-group state"):
        restore.load(path, 9, "p1", ["p2"])
    store.close()


@pytest.mark.parametrize("last", ["'x'", str(10 ** 12)])
def test_a_damaged_range_is_one_line_when_listing_what_can_be_restored(tmp_path, last):
    store = SnapshotStore(tmp_path / "s.db")
    store.save([], [ranged_batch()])
    store.db.execute(f"UPDATE reports SET last = {last} WHERE snapshot = 2 AND process = 'p2'")
    with pytest.raises(StoreError, match="damaged row 2 of reports: a range to") as e:
        store.with_reports(Outcome.ACCEPTED)
    assert "\n" not in str(e.value)
    store.close()
