"""control/store.py: what is saved comes back, numbers survive a restart."""
import pytest

from beaver.control.slbs.clock import Estimate
from beaver.traffic.oob.protocol import ChannelState, Report
from beaver.control.engine.record import Ack, Mode, Outcome, SnapshotRecord, Verdict
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
    with pytest.raises(StoreError, match="UNIQUE constraint failed: snapshots.id"):
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


def batch(first, count, singles=()):
    from beaver.control.engine.record import BatchRecord, ScheduleAck
    from beaver.p4src.wire import FLAG_MARKING, Batch, Track
    b = BatchRecord(first, count, Mode.OGM, "fine", 300, ["s1"], 1000, 1.7e9, 5000, 100,
                    finished_us=9000, verdict=Verdict(Outcome.ACCEPTED, "by schedule", "fine",
                                                      -250.0))
    b.acks["s1"] = ScheduleAck("s1", Status.OK, ControlBody(0, 0, first - 1, first + count - 1,
                                                            8000, 0, 0, 0, 1, FLAG_MARKING,
                                                            1_005_000),
                               Batch(count, 100, 0, Track.FINAL, 0), 1000, 9000, 1,
                               Estimate(1_000_000.0, 4.0, 8, "probe"))
    for n in singles:
        b.singles[n] = record(n, Outcome.REJECTED)
    return b


def test_a_batch_is_one_range_and_answers_for_every_number(tmp_path):
    store = SnapshotStore(tmp_path / "s.db")
    store.save([record(1)], [batch(2, 1000, singles=(2, 3))])
    assert store.db.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0] == 3
    assert store.db.execute("SELECT COUNT(*) FROM acks").fetchone()[0] == 6
    assert store.counts() == {Outcome.ACCEPTED: 1 + 998, Outcome.REJECTED: 2,
                              Outcome.INCOMPLETE: 0}
    judged_apart = store.get(3)
    assert judged_apart.verdict.outcome is Outcome.REJECTED and judged_apart.batch is None
    by_schedule = store.get(500)
    assert by_schedule.verdict.reason == "by schedule" and by_schedule.batch == range(2, 1002)
    ack = by_schedule.acks["s1"]
    assert ack.body.activate_at == ack.body.switch_time == 1_005_000 + 498 * 100, \
        "the 499th ID's time on the schedule"
    assert ack.body.last_old_time == ack.body.switch_time - 1
    assert by_schedule.activate_us == 5000 + 498 * 100 and by_schedule.snapshot_id == 500
    assert store.get(1002) is None


def test_latest_merges_ranges_and_rows(tmp_path):
    store = SnapshotStore(tmp_path / "s.db")
    store.save([record(1), record(20, Outcome.REJECTED)], [batch(2, 10, singles=(9,))])
    assert [r.number for r in store.latest(5)] == [20, 11, 10, 9, 8]
    assert [r.number for r in store.latest(3, Outcome.REJECTED)] == [20, 9]
    assert [r.number for r in store.latest(12, Outcome.ACCEPTED)] == \
        [11, 10, 8, 7, 6, 5, 4, 3, 2, 1]


def test_records_of_a_span_come_in_order_each_whole(tmp_path):
    store = SnapshotStore(tmp_path / "s.db")
    report = Report("p1", 1, True, "mark", 123, {"x": 1}, {}, 1, 0)
    store.save([record(1, reports={"p1": report})], [batch(2, 5, singles=(4,))])
    got = store.records(1, 6)
    assert [r.number for r in got] == [1, 2, 3, 4, 5, 6]
    assert got[0].reports == {"p1": report} and set(got[0].acks) == {"s1", "s2"}
    assert got[3].verdict.outcome is Outcome.REJECTED and got[4].batch == range(2, 7)
    assert [r.number for r in store.records(3, 4)] == [3, 4]
