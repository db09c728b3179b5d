"""Reports as changes from a base (traffic/oob/deltas.py, traffic/oob/protocol.py's
"base", control/store.py): the states rebuilt from them are the whole
states, on random JSON values, against real runtimes on loopback through the
controller's link, and from the store; a restarted process is never diffed
against its predecessor's state, and a failed save is never a base."""
from __future__ import annotations

import json
import queue
import random
import socket
import subprocess
import sys

import pytest

from beaver.traffic.oob import deltas
from beaver.traffic.oob import protocol as oob
from beaver.control.config import ProcessConfig
from beaver.traffic.oob.links import ProcessLink
from beaver.control.store import CHAIN_MOST, SnapshotStore, StoreError

from tests.support.runtimes import (Recorder, answers_status, client_socket, dip, eventually, oob_request,
                       runtimes, send_request, vip)
from tests.support.slb import slb_ip
from tests.unit.test_store import record

__all__ = ["runtimes"]   # the fixture


def random_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(7 if depth < 3 else 5)
    return [lambda: rng.randrange(-3, 3), lambda: rng.choice([True, False, None]),
            lambda: rng.choice([0.5, 1.0, "a", "b", ""]),
            lambda: [rng.randrange(3), "x"][:rng.randrange(3)],
            lambda: rng.randrange(3) * 1.0,
            lambda: {f"k{rng.randrange(6)}": random_value(rng, depth + 1)
                     for _ in range(rng.randrange(5))},
            lambda: {f"k{rng.randrange(6)}": random_value(rng, depth + 1)
                     for _ in range(rng.randrange(5))}][kind]()


def mutate(rng: random.Random, value):
    if type(value) is not dict or rng.random() < 0.2:
        return random_value(rng)
    changed = dict(value)
    for _ in range(rng.randrange(3)):
        key = f"k{rng.randrange(6)}"
        if key in changed and rng.random() < 0.3:
            del changed[key]
        else:
            changed[key] = mutate(rng, changed.get(key))
    return changed


def test_a_state_rebuilt_from_its_changes_is_the_state_itself_json_types_and_all():
    rng = random.Random(19)
    for _ in range(3000):
        old = random_value(rng)
        new = mutate(rng, old)
        before = json.dumps(old, sort_keys=True)
        # What crosses the wire is JSON: rebuild from what the controller decodes.
        change = json.loads(json.dumps(deltas.diff(old, new)))
        rebuilt = deltas.apply(json.loads(before), change)
        assert json.dumps(rebuilt, sort_keys=True) == json.dumps(new, sort_keys=True)
        assert json.dumps(old, sort_keys=True) == before, "the base is never changed"
    assert deltas.diff({"a": 1}, {"a": True}) == {"set": {"a": True}}, "1 and True differ"


def test_changes_that_do_not_fit_their_base_are_refused():
    with pytest.raises(ValueError, match="'b' deleted"):
        deltas.apply({"a": 1}, {"del": ["b"]})
    with pytest.raises(ValueError, match="inside 'b'"):
        deltas.apply({"a": 1}, {"in": {"b": {"set": {"c": 1}}}})


class Keys(Recorder):
    """A state of many keys, a few of which each request changes."""

    def on_request(self, message: dict, client):
        self.requests.append(message)
        self.runtime.reply(client, {"ok": True})

    def local_state(self):
        return {"keys": {f"k{i}": [i, len([r for r in self.requests if r["key"] == i])]
                         for i in range(200)}, "requests": len(self.requests)}


def link_to(address):
    answers = queue.SimpleQueue()
    return ProcessLink(ProcessConfig("p1", *address), 2.0, answers.put), answers


def report_of(link, answers, snapshot_id: int):
    link.ask("report", snapshot_id, snapshot_id)
    answered = answers.get(timeout=5)
    assert answered.error is None, answered.error
    return answered.report


def test_the_link_rebuilds_every_whole_state_from_the_changes_it_is_sent(runtimes):
    runtime, _ = runtimes("p1", 1, Keys)
    client = client_socket()
    link, answers = link_to(runtime.oob_address)
    for snapshot_id in range(1, 13):
        send_request(client, dip(1), vip(1), {"id": f"r{snapshot_id}", "key": snapshot_id % 5},
                     mark=snapshot_id)
        rebuilt = report_of(link, answers, snapshot_id)
        whole = oob.Report.from_message(oob_request(runtime, {"op": "report",
                                                              "id": snapshot_id}))
        assert rebuilt.delta is None and rebuilt.local_state == whole.local_state
        assert rebuilt == whole
    # Older IDs again, against the newest base, and asked many at once.
    for snapshot_id in (3, 11):
        assert report_of(link, answers, snapshot_id).local_state == oob.Report.from_message(
            oob_request(runtime, {"op": "report", "id": snapshot_id})).local_state
    link.close()
    client.close()
    # What went on the wire: the changes only, from a base the process keeps.
    small = oob_request(runtime, {"op": "report", "id": 12, "base": 11})
    assert "local_state" not in small and small["delta"]["base"] == 11
    assert small["delta"]["changes"] == {"set": {"requests": 11},   # recorded before the 12th
                                         "in": {"keys": {"set": {"k1": [1, 3]}}}}
    whole = oob_request(runtime, {"op": "report", "id": 12})
    assert len(json.dumps(small)) * 10 < len(json.dumps(whole))


def test_a_base_no_longer_kept_gets_the_whole_state(runtimes):
    runtime, _ = runtimes("p1", 1, Keys, window=4)
    client = client_socket()
    for snapshot_id in (1, 9):
        send_request(client, dip(1), vip(1), {"id": f"r{snapshot_id}", "key": 1},
                     mark=snapshot_id)
    answer = oob_request(runtime, {"op": "report", "id": 9, "base": 1})
    assert "delta" not in answer and answer["local_state"]["requests"] == 1
    with pytest.raises(oob.ProtocolError, match="bad base"):
        oob_request(runtime, {"op": "report", "id": 9, "base": "1"})
    client.close()


def replica(n: int) -> subprocess.Popen:
    """A key-value replica in its own OS process, as in a run."""
    process = subprocess.Popen(
        [sys.executable, "-m", "beaver.traffic.services.kvstore", "--name", "p1", "--dip", dip(n),
         "--vip", "%s:%d" % vip(n), "--slb", slb_ip(1)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    eventually(lambda: answers_status((dip(n), oob.OOB_PORT)), timeout=20)
    return process


def put(client, n: int, key: str, mark: int):
    assert send_request(client, dip(n), vip(n), {"id": f"{key}@{mark}", "op": "put",
                                                 "key": key, "value": mark}, mark)["ok"]


def test_a_restarted_process_is_never_diffed_against_its_predecessor():
    client = client_socket()
    first = replica(2)
    link, answers = link_to((dip(2), oob.OOB_PORT))
    try:
        for mark in (1, 2, 3, 4):
            put(client, 2, f"old{mark}", mark)
        held = report_of(link, answers, 3).local_state        # the link holds 3
        assert set(held["registers"]) == {"old1", "old2"}
        first.kill()
        first.wait()
        # Its successor jumps from 0 to 5 with a state of its own, and so
        # keeps 3 too, with that state.
        second = replica(2)
        try:
            put(client, 2, "new", 5)
            link.ask("report", 5, "lost")
            assert answers.get(timeout=5).error is not None, "the old connection is gone"
            report = report_of(link, answers, 5)
            with socket.create_connection((dip(2), oob.OOB_PORT), timeout=2) as s:
                whole = oob.Report.from_message(
                    oob.request(s, {"v": oob.VERSION, "op": "report", "id": 5}))
            assert report.local_state == whole.local_state
            assert report.local_state["registers"] == {}, "recorded before the put"
        finally:
            second.terminate()
            second.wait()
    finally:
        link.close()
        client.close()
        if first.poll() is None:
            first.kill()


def stored_report(process: str, number: int, state) -> oob.Report:
    return oob.Report(process, number, True, "mark", number, state,
                      {"p2" if process == "p1" else "p1": oob.ChannelState(number, number, [])},
                      number, number - 1)


def test_the_store_keeps_changes_and_gives_back_every_whole_state(tmp_path):
    rng = random.Random(7)
    states = {"p1": {"keys": {}}, "p2": {"keys": {}}}
    saved = {}
    store = SnapshotStore(tmp_path / "s.db")
    numbers = list(range(1, 3 * CHAIN_MOST))
    for first in range(0, len(numbers), 5):             # as the ledger commits: in groups
        records = []
        for number in numbers[first:first + 5]:
            reports = {}
            for process in ("p1", "p2"):
                states[process] = mutate(rng, states[process])
                reports[process] = stored_report(process, number, states[process])
                saved[number, process] = json.dumps(states[process], sort_keys=True)
            records.append(record(number, reports=reports))
        store.save(list(reversed(records)))             # in any order
        if first == 20:
            store.close()                               # a new store object starts whole
            store = SnapshotStore(tmp_path / "s.db")
    with pytest.raises(StoreError, match="UNIQUE"):   # a failed save is no base
        store.save([record(numbers[-1], reports={"p1": stored_report("p1", 99, {"x": 1})})])
    store.save([record(99, reports={"p1": stored_report("p1", 99, {"x": 2})})])
    saved[99, "p1"] = json.dumps({"x": 2})

    rows = store.db.execute("SELECT snapshot, process, report FROM reports").fetchall()
    changes = [json.loads(text)["delta"]["base"] for _, _, text in rows
               if "delta" in json.loads(text)]
    assert len(changes) > len(rows) * 3 // 4, "most reports are kept as changes"
    for number, process, text in rows:
        chain, message = 0, json.loads(text)
        while "delta" in message:
            chain += 1
            message = json.loads(store.db.execute(
                "SELECT report FROM reports WHERE snapshot = ? AND process = ?",
                (message["delta"]["base"], process)).fetchone()[0])
        assert chain <= CHAIN_MOST
    every = {(r.number, p): json.dumps(rep.local_state, sort_keys=True)
             for r in store.records(1, 99) for p, rep in r.reports.items()}
    assert every == saved
    for number in (1, 17, numbers[-1], 99):             # one at a time, as a restore reads
        for process, report in store.get(number).reports.items():
            assert json.dumps(report.local_state, sort_keys=True) == saved[number, process]
    store.close()


def test_a_store_of_schema_3_is_read_and_becomes_5_so_no_older_reader_misreads_it(tmp_path):
    store = SnapshotStore(tmp_path / "s.db")
    store.save([record(1, reports={"p1": stored_report("p1", 1, {"x": 1})})])
    store.db.execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'")
    store.close()
    store = SnapshotStore(tmp_path / "s.db")
    assert store.get(1).reports["p1"].local_state == {"x": 1}
    store.save([record(2, reports={"p1": stored_report("p1", 2, {"x": 2})})])
    assert store.get(2).reports["p1"].local_state == {"x": 2}
    assert store.db.execute("SELECT value FROM meta WHERE key = 'schema_version'"
                            ).fetchone() == (5,)
    store.close()
