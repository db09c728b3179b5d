"""Many snapshot IDs in one out-of-band exchange (traffic/oob/protocol.py), against a
loopback runtime: answers in order, each what a request of its own gets."""
from __future__ import annotations

import pytest

from beaver.traffic.oob import protocol as oob
from beaver.traffic.oob.protocol import Report

from tests.support.runtimes import Recorder, oob_request, runtimes

__all__ = ["runtimes"]   # the fixture


def many(runtime, op: str, ids) -> list[dict]:
    answer = oob_request(runtime, {"op": op, "ids": list(ids)})
    assert answer["op"] == "reports" and len(answer["reports"]) == len(ids)
    return answer["reports"]


def single(runtime, op: str, snapshot_id: int) -> dict:
    return oob_request(runtime, {"op": op, "id": snapshot_id})


def test_a_snapshot_of_many_ids_records_one_local_state_and_answers_in_order(runtimes):
    runtime, _ = runtimes("p1", 1)
    reports = [Report.from_message(r) for r in many(runtime, "snapshot", [3, 1, 2])]
    assert [r.snapshot_id for r in reports] == [3, 1, 2]
    assert all(r.taken and r.trigger == "oob" and r.current_id == 3 for r in reports)
    assert len({r.taken_at_us for r in reports}) == 1
    assert [(r.first, r.last) for r in runtime.snapshots.records] == [(1, 3)]
    assert many(runtime, "report", [1, 2, 3]) == [single(runtime, "report", i) for i in (1, 2, 3)]


def test_a_snapshot_of_ids_already_passed_records_nothing(runtimes):
    runtime, _ = runtimes("p1", 1)
    single(runtime, "snapshot", 7)
    many(runtime, "snapshot", [5, 7])
    assert len(runtime.snapshots.records) == 1
    reports = many(runtime, "snapshot", [6, 9, 8])
    assert [(r.first, r.last) for r in runtime.snapshots.records] == [(1, 7), (8, 9)]
    assert [r["current_id"] for r in reports] == [9, 9, 9]


def test_an_id_no_longer_kept_is_an_error_in_its_place_only(runtimes):
    runtime, _ = runtimes("p1", 1, window=4)
    single(runtime, "snapshot", 10)
    reports = many(runtime, "report", [10, 2, 12, 7])
    assert [r["op"] for r in reports] == ["report", "error", "report", "report"]
    assert reports[1]["error"] == "snapshot 2 is not kept (the newest 4 IDs are)"
    assert (reports[2]["taken"], reports[3]["taken"]) == (False, True)
    with pytest.raises(oob.ProtocolError, match="snapshot 2 is not kept"):
        single(runtime, "report", 2)   # the single form as before


@pytest.mark.parametrize("request_, error", [
    ({"op": "report", "ids": []}, "must be a non-empty list"),
    ({"op": "report", "ids": 5}, "must be a non-empty list"),
    ({"op": "report", "ids": [1, "2"]}, "bad snapshot id '2'"),
    ({"op": "snapshot", "ids": [1, -1]}, "bad snapshot id -1"),
    ({"op": "report", "ids": [1], "id": 1}, '"id" or "ids", not both'),
    ({"op": "report", "ids": list(range(1, oob.MAX_IDS + 2))}, "1025 ids: at most 1024"),
])
def test_a_malformed_request_of_many_ids_is_refused_whole(runtimes, request_, error):
    runtime, _ = runtimes("p1", 1)
    with pytest.raises(oob.ProtocolError, match=error):
        oob_request(runtime, request_)
    assert runtime.snapshots.current_id == 0, "a refused snapshot records nothing"


def test_as_many_ids_as_the_bound_are_answered(runtimes):
    runtime, _ = runtimes("p1", 1, window=oob.MAX_IDS)
    ids = list(range(oob.MAX_IDS, 0, -1))
    reports = many(runtime, "snapshot", ids)
    assert [r["snapshot_id"] for r in reports] == ids and all(r["taken"] for r in reports)
    assert len(runtime.snapshots.records) == 1


class Bulky(Recorder):
    """A local state of 20 kB: 1024 reports of it exceed oob.MAX_MESSAGE."""

    def local_state(self):
        return {"blob": "x" * 20_000}


def test_an_answer_too_long_is_an_error_and_the_connection_stays(runtimes):
    runtime, _ = runtimes("p1", 1, Bulky, window=oob.MAX_IDS)
    with pytest.raises(oob.ProtocolError, match="exceeds"):
        many(runtime, "snapshot", list(range(1, oob.MAX_IDS + 1)))
    assert len(many(runtime, "report", list(range(1, 11)))) == 10
