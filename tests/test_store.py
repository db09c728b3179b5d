"""control/store.py: what is saved comes back, numbers survive a restart."""
import sqlite3

import pytest

from beaver.control.clock import Estimate
from beaver.control.oob import ChannelState, Report
from beaver.control.record import Ack, Mode, Outcome, SnapshotRecord, Verdict
from beaver.control.store import SnapshotStore, StoreError
from beaver.p4src.wire import ControlBody, Status


def record(number, outcome=Outcome.ACCEPTED, reports=None):
    r = SnapshotRecord(number, Mode.OGM, "fine", 300, ["s1", "s2"], 1000 * number, 1.7e9,
                       finished_us=1000 * number + 650)
    r.acks["s1"] = Ack("s1", Status.OK, ControlBody(0, number, number - 1, number, 99, 98, 97, 3,
                                                   1, 2), 1000 * number, 1000 * number + 650, 1,
                       Estimate(12.5, 3.0, 8))
    r.acks["s2"] = Ack("s2", Status.STALE, ControlBody(0, number + 1, number + 1, number + 1),
                       1000 * number, 1000 * number + 600, 3)
    r.reports = reports or {}
    r.verdict = Verdict(outcome, "because", "fine", -12.0)
    return r


def test_a_saved_snapshot_comes_back_whole(tmp_path):
    store = SnapshotStore(tmp_path / "s.db")
    report = Report("p1", 7, True, "mark", 123, {"x": [1, 2]},
                    {"p2": ChannelState(3, 2, [{"id": "m9"}])}, 7, 6)
    store.save([record(7, reports={"p1": report})])
    got = store.get(7)
    want = record(7, reports={"p1": report})
    want.acks["s1"].clock = Estimate(12.5, 3.0, 0)
    assert got == want
    assert got.snapshot_id == 7 and got.acks["s2"].clock is None
    assert store.get(8) is None


def test_latest_and_counts(tmp_path):
    store = SnapshotStore(tmp_path / "s.db")
    store.save([record(1), record(2, Outcome.REJECTED), record(3, Outcome.INCOMPLETE),
                record(4)])
    assert [r.number for r in store.latest(3)] == [4, 3, 2]
    assert [r.number for r in store.latest(10, Outcome.ACCEPTED)] == [4, 1]
    assert store.counts() == {Outcome.ACCEPTED: 2, Outcome.REJECTED: 1, Outcome.INCOMPLETE: 1}


def test_a_batch_is_all_or_nothing(tmp_path):
    store = SnapshotStore(tmp_path / "s.db")
    store.save([record(1)])
    with pytest.raises(sqlite3.IntegrityError):
        store.save([record(2), record(1)])   # 1 exists: the batch must not half-land
    assert store.get(2) is None and store.counts()[Outcome.ACCEPTED] == 1


def test_reservations_and_snapshots_survive_reopening(tmp_path):
    path = tmp_path / "s.db"
    store = SnapshotStore(path)
    assert store.reserved_through == 0
    store.reserve(1024)
    store.reserve(10)   # never moves back
    store.save([record(5)])
    # no close(): as if the controller had crashed
    again = SnapshotStore(path)
    assert again.reserved_through == 1024
    assert again.get(5).verdict.outcome is Outcome.ACCEPTED


def test_a_file_that_is_not_a_store(tmp_path):
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a snapshot store"):
        SnapshotStore(path)
