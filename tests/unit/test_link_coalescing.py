"""ProcessLink (traffic/oob/links.py) coalesces: the asks queued while an
exchange is outstanding go out as one exchange per op, and each still gets
its own answer.  Against a stand-in process that counts its exchanges."""
from __future__ import annotations

import queue
import socket
import threading

import pytest

from beaver.traffic.oob import protocol as oob
from beaver.control.config import ProcessConfig
from beaver.traffic.oob.protocol import Report
from beaver.traffic.oob.links import ProcessLink

from tests.support.runtimes import runtimes

__all__ = ["runtimes"]   # the fixture


class StandIn:
    """An OOB server that answers every ID with a report of it, holds its
    first answer until `release` is set (so that asks queue), and records
    each request.  errors: IDs answered with an error in their place;
    misreport: IDs answered with another ID's report; hang_up: IDs whose
    request it answers by closing the connection."""

    def __init__(self, errors=(), misreport=(), hang_up=()):
        self.errors, self.misreport, self.hang_up = set(errors), set(misreport), set(hang_up)
        self.requests: list[dict] = []
        self.connections = 0
        self.release = threading.Event()
        self.holding = threading.Event()   # the first request arrived and waits for release
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = self._listener.getsockname()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        with conn:
            while True:
                try:
                    request = oob.receive(conn)
                except (ConnectionError, OSError):
                    return
                self.requests.append(request)
                self.holding.set()
                self.release.wait(5)
                ids = request.get("ids", [request.get("id")])
                if self.hang_up & set(ids):
                    return
                answers = [self._answer(request["op"], i) for i in ids]
                oob.send(conn, answers[0] if "id" in request
                         else {"v": oob.VERSION, "op": "reports", "reports": answers})

    def _answer(self, op: str, snapshot_id: int) -> dict:
        if snapshot_id in self.errors:
            return {"v": oob.VERSION, "op": "error", "error": f"snapshot {snapshot_id} is not kept"}
        reported = snapshot_id + 1 if snapshot_id in self.misreport else snapshot_id
        return Report("p1", reported, True, op, current_id=reported).to_message()

    def close(self):
        self.release.set()
        self._listener.close()


@pytest.fixture
def stand_in():
    made = []

    def make(**kwargs):
        made.append(process := StandIn(**kwargs))
        return process

    yield make
    for process in made:
        process.close()


def link_to(address):
    answers = queue.SimpleQueue()
    return ProcessLink(ProcessConfig("p1", *address), 2.0, answers.put), answers


def collect(answers, count: int) -> dict:
    got = {}
    for _ in range(count):
        answered = answers.get(timeout=5)
        assert answered.token not in got, "one answer per token"
        got[answered.token] = answered
    assert answers.empty()
    return got


def asked_ids(request: dict) -> list[int]:
    return request.get("ids", [request.get("id")])


def test_asks_queued_during_an_exchange_go_out_as_one_exchange_per_op(stand_in):
    process = stand_in()
    link, answers = link_to(process.address)
    link.ask("snapshot", 1, "s1")
    assert process.holding.wait(5)                # held at the process: the rest queue
    for i in range(2, 42):
        link.ask("snapshot" if i % 4 else "report", i, f"t{i}")
    process.release.set()
    got = collect(answers, 41)
    link.close()
    assert [(r["op"], asked_ids(r)) for r in process.requests] == [
        ("snapshot", [1]),
        ("snapshot", [i for i in range(2, 42) if i % 4]),
        ("report", [i for i in range(2, 42) if not i % 4])]
    assert process.requests[0] == {"v": 1, "op": "snapshot", "id": 1}, "one ID: the single form"
    assert process.connections == 1
    assert got["s1"].report.snapshot_id == 1
    for i in range(2, 42):
        answered = got[f"t{i}"]
        assert answered.error is None and answered.report.snapshot_id == i
        assert answered.report.trigger == ("snapshot" if i % 4 else "report")


def test_a_failed_exchange_fails_each_of_its_ids_and_the_next_starts_afresh(stand_in):
    process = stand_in(hang_up=[7])
    link, answers = link_to(process.address)
    link.ask("report", 1, 1)
    assert process.holding.wait(5)
    for i in range(5, 10):
        link.ask("report", i, i)
    process.release.set()
    got = collect(answers, 6)
    assert got[1].error is None
    for i in range(5, 10):
        assert got[i].report is None
        assert str(got[i].error) == (f"p1 ({process.address[0]}:{process.address[1]}): "
                                     "peer closed the connection")
    link.ask("report", 3, "after")
    assert collect(answers, 1)["after"].report.snapshot_id == 3
    link.close()
    assert process.connections == 2


def test_an_error_or_a_wrong_id_in_its_place_fails_that_id_only(stand_in):
    process = stand_in(errors=[6], misreport=[8])
    link, answers = link_to(process.address)
    link.ask("report", 1, 1)
    assert process.holding.wait(5)
    for i in range(5, 10):
        link.ask("report", i, i)
    process.release.set()
    got = collect(answers, 6)
    link.close()
    assert len(process.requests) == 2
    assert str(got[6].error) == (f"p1 ({process.address[0]}:{process.address[1]}): "
                                 "process refused 'report': snapshot 6 is not kept")
    assert str(got[8].error) == "p1: asked for 8, reported 9"
    assert [got[i].report.snapshot_id for i in (1, 5, 7, 9)] == [1, 5, 7, 9]
    assert process.connections == 1, "an error in its place leaves the connection in step"


def test_no_exchange_carries_more_than_the_bound(stand_in):
    process = stand_in()
    link, answers = link_to(process.address)
    link.ask("report", 0, 0)
    assert process.holding.wait(5)
    for i in range(1, oob.MAX_IDS + 7):
        link.ask("report", i, i)
    process.release.set()
    got = collect(answers, oob.MAX_IDS + 7)
    link.close()
    assert [len(asked_ids(r)) for r in process.requests] == [1, oob.MAX_IDS, 6]
    assert all(got[i].report.snapshot_id == i for i in got)


def test_coalesced_snapshots_at_a_runtime_record_one_local_state(runtimes):
    runtime, _ = runtimes("p1", 1)
    server, answer = runtime._oob._server, runtime._oob._server.answer
    arrived = threading.Event()
    server.answer = lambda message: (arrived.set(), answer(message))[1]
    link, answers = link_to(runtime.oob_address)
    with runtime._lock:          # holds the runtime's first answer, so that the asks queue
        link.ask("snapshot", 1, 1)
        assert arrived.wait(5)
        for i in range(2, 11):
            link.ask("snapshot", i, i)
    got = collect(answers, 10)
    link.close()
    assert [(r.first, r.last) for r in runtime.snapshots.records] == [(1, 1), (2, 10)]
    assert all(got[i].report.taken and got[i].report.snapshot_id == i for i in got)
    assert got[5].report.taken_at_us == got[10].report.taken_at_us != got[1].report.taken_at_us
