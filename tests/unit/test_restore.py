"""Restoring in-group processes from a stored snapshot (traffic/runtime/restore.py),
live on loopback: the bank and the key-value store taken by the real
runtimes, the snapshot stored as the controller stores it, the processes
started again from it.  Each message in flight at the cut is delivered again
exactly once, and nothing received before the cut is."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from beaver.traffic.oob import protocol as oob
from beaver.control.engine.record import Mode as ControllerMode
from beaver.control.engine.record import Outcome, SnapshotRecord, Verdict
from beaver.control.store import SnapshotStore
from beaver.control.engine.window import wire_id
from beaver.traffic.runtime import restore
from beaver.traffic.services.bank import BankShard, snapshot_total
from beaver.traffic.services.kvstore import KvReplica
from beaver.traffic.outgroup.endpoint import Endpoint
from beaver.traffic.runtime.udp import Runtime

from tests.support.runtimes import eventually, oob_request
from tests.support.slb import LoopbackSlb, slb_ip

SHARDS = ["b1", "b2"]
ACCOUNTS, INITIAL = 4, 100   # a0, a2 on b1; a1, a3 on b2


# Addresses of their own (runtimes.py's are 127.0.4.x), so that these tests
# never collide with another run of the suite on the machine.
def dip(n: int) -> str:
    return f"127.0.6.{n}"


def vip(n: int) -> tuple[str, int]:
    return f"127.0.6.{100 + n}", 7000


def outside(n: int) -> str:
    return f"127.0.6.{50 + n}"


class Cluster:
    """Bank shards b1 (dip 1) and b2 (dip 2) behind one stand-in SLB, started
    fresh or from a snapshot, as many times as a test asks."""

    def __init__(self, tmp_path, shards=SHARDS):
        self.store = tmp_path / "snapshots.db"
        self.shards = shards
        self.runtimes: dict[str, Runtime] = {}
        self.apps: dict[str, BankShard] = {}
        self.slb = LoopbackSlb(1)
        self.front = self.slb.front((outside(9), 7000), vip(1), dip(1))
        self.client = Endpoint("client", (outside(1), 0))

    def start(self, number: int | None = None, force: bool = False):
        self.stop()
        for n, name in enumerate(SHARDS, start=1):
            peers = {p: dip(k) for k, p in enumerate(SHARDS, start=1) if p != name}
            runtime = Runtime(name, dip(n), vips=[vip(1)], slbs=[slb_ip(1)], peers=peers,
                              mgmt=(dip(n), 0))
            app = BankShard(runtime, self.shards, ACCOUNTS, INITIAL)
            self.runtimes[name], self.apps[name] = runtime, app
            runtime.serve(app, None if number is None else
                          restore.load(self.store, number, name, peers, force))

    def stop(self):
        for runtime in self.runtimes.values():
            runtime.stop()
        self.runtimes.clear()

    def close(self):
        self.stop()
        self.client.close()
        self.slb.close()

    def transfer(self, src: str, dst: str, amount: int):
        reply = self.client.call(self.front, {"op": "transfer", "src": src, "dst": dst,
                                              "amount": amount}, 2)
        assert reply["ok"], reply

    def ask(self, name: str, message: dict) -> dict:
        return oob_request(self.runtimes[name], message)

    def take(self, name: str, snapshot_id: int) -> oob.Report:
        return oob.Report.from_message(self.ask(name, {"op": "snapshot", "id": snapshot_id}))

    def save(self, number: int, reports: dict[str, oob.Report],
             outcome: Outcome = Outcome.ACCEPTED, reserved: int = 0):
        record = SnapshotRecord(number, ControllerMode.LAI_YANG, "lai-yang", 0, [], 1, 1.7e9,
                                finished_us=2, reports=reports,
                                verdict=Verdict(outcome, "as the test says"))
        with_store(self.store, lambda s: (s.save([record]), s.reserve(max(reserved, number))))


def with_store(path, use):
    store = SnapshotStore(path)
    try:
        return use(store)
    finally:
        store.close()


@pytest.fixture
def cluster(tmp_path):
    cluster = Cluster(tmp_path)
    yield cluster
    cluster.close()


def credit_in_flight(cluster: Cluster) -> dict[str, oob.Report]:
    """Snapshot 1 with one credit in flight: a0 (b1) pays a1 (b2) 30, and b2
    records its state before the credit arrives, b1 after the debit (on b2's
    COUNT).  Before all that, a transfer whose credit reached b2 before its
    cut (not in flight)."""
    cluster.start()
    cluster.transfer("a2", "a3", 5)
    eventually(lambda: cluster.apps["b2"].balances["a3"] == 105)
    b2 = cluster.runtimes["b2"]
    with b2._lock:   # b2's handlers wait: the credit stays in its socket
        cluster.transfer("a0", "a1", 30)
        b2._took(b2.snapshots.oob(1))   # what an out-of-band snapshot does, under the lock
    eventually(lambda: len(b2.snapshots.records[-1].in_flight.get("b1", ())))
    eventually(lambda: cluster.runtimes["b1"].snapshots.current_id == 1)
    reports = {name: oob.Report.from_message(cluster.ask(name, {"op": "report", "id": 1}))
               for name in SHARDS}
    assert [item["message"]["amount"] for item in reports["b2"].channels["b1"].in_flight] == [30]
    assert snapshot_total(reports.values()) == ACCOUNTS * INITIAL
    return reports


def test_a_restored_bank_takes_the_cut_and_replays_the_credit_in_flight_once(cluster):
    cluster.save(1, credit_in_flight(cluster))
    cluster.transfer("a0", "a1", 7)   # after the cut: rolled back
    cluster.start(1)
    b1, b2 = cluster.apps["b1"], cluster.apps["b2"]
    assert b1.balances == {"a0": 70, "a2": 95}
    assert b2.balances == {"a1": 100, "a3": 105}, "the state at b2's cut, credit not yet in"
    status = cluster.ask("b2", {"op": "status"})["restored"]
    assert (status["held"], status["in_flight"], status["replayed"]) == (True, {"b1": 1}, {})
    with pytest.raises(oob.ProtocolError, match="has not been resumed"):
        cluster.ask("b2", {"op": "snapshot", "id": 5})

    resumed = cluster.ask("b2", {"op": "resume", "state": True})
    assert resumed["op"] == "resumed" and resumed["replayed"] == {"b1": 1}
    assert resumed["state"]["balances"] == {"a1": 130, "a3": 105}
    again = cluster.ask("b2", {"op": "resume"})
    assert again["replayed"] == {"b1": 1} and b2.balances["a1"] == 130, "exactly once"
    assert cluster.ask("b1", {"op": "resume"})["replayed"] == {}
    assert sum(b1.balances.values()) + sum(b2.balances.values()) == ACCOUNTS * INITIAL

    cluster.transfer("a1", "a0", 10)   # it serves again, and its credits arrive
    eventually(lambda: b1.balances["a0"] == 80)
    assert b2.balances["a1"] == 120


def test_every_restore_from_one_snapshot_gives_the_same_state(cluster):
    cluster.save(1, credit_in_flight(cluster))
    states = []
    for _ in range(2):
        cluster.start(1)
        states.append({name: cluster.ask(name, {"op": "resume", "state": True})["state"]
                       for name in SHARDS})
        cluster.transfer("a0", "a2", 1)
    assert states[0] == states[1]
    assert states[0]["b2"]["balances"]["a1"] == 130


def test_a_restored_process_starts_after_every_number_the_store_reserved(cluster):
    """Snapshots 2..1024 may have reached a switch before the rollback: they
    belong to the history rolled back, and a restored process refuses them."""
    cluster.save(1, credit_in_flight(cluster), reserved=1024)
    cluster.start(1)
    for name in SHARDS:
        cluster.ask(name, {"op": "resume"})
        assert cluster.runtimes[name].snapshots.current_id == wire_id(1024)
    with pytest.raises(oob.ProtocolError, match="not kept"):
        cluster.ask("b1", {"op": "report", "id": 1000})
    report = cluster.take("b1", 1025)
    assert report.taken and report.channels["b2"].received_before == 0


def test_message_ids_of_a_restored_process_repeat_none_of_its_first_life(cluster):
    cluster.save(1, credit_in_flight(cluster))
    first = {cluster.client.call(cluster.front, {"op": "balance", "account": "a0"}, 2)["id"]}
    cluster.start(1)
    cluster.ask("b1", {"op": "resume"})
    cluster.ask("b2", {"op": "resume"})
    second = {cluster.client.call(cluster.front, {"op": "balance", "account": "a0"}, 2)["id"]}
    assert first.isdisjoint(second), (first, second)


def test_a_replica_restored_gets_the_update_in_flight_to_it(tmp_path):
    store = tmp_path / "s.db"
    names = ["kv1", "kv2"]

    def start(number=None):
        runtimes = {}
        for n, name in enumerate(names, start=1):
            peers = {p: dip(k) for k, p in enumerate(names, start=1) if p != name}
            runtime = Runtime(name, dip(n), vips=[vip(n)], slbs=[slb_ip(1)], peers=peers,
                              mgmt=(dip(n), 0))
            app = KvReplica(runtime, [p for p in names if p != name])
            runtime.serve(app, None if number is None else restore.load(store, number, name,
                                                                         peers))
            runtimes[name] = (runtime, app)
        return runtimes

    slb = LoopbackSlb(1)
    client = Endpoint("client", (outside(1), 0))
    runtimes = start()
    try:
        front = slb.front((outside(9), 7000), vip(1), dip(1))
        kv2 = runtimes["kv2"][0]
        with kv2._lock:   # as for the bank's credit: the update waits in kv2's socket
            assert client.call(front, {"op": "put", "key": "k", "value": 5}, 2)["ok"]
            kv2._took(kv2.snapshots.oob(1))
        eventually(lambda: runtimes["kv2"][1].value("k") == 5)
        eventually(lambda: runtimes["kv1"][0].snapshots.current_id == 1)
        reports = {n: oob.Report.from_message(oob_request(rt, {"op": "report", "id": 1}))
                   for n, (rt, _) in runtimes.items()}
        record = SnapshotRecord(1, ControllerMode.LAI_YANG, "lai-yang", 0, [], 1, 1.7e9,
                                reports=reports, verdict=Verdict(Outcome.ACCEPTED, "ok"))
        with_store(store, lambda s: s.save([record]))
        for runtime, _ in runtimes.values():
            runtime.stop()
        runtimes = start(1)
        assert runtimes["kv2"][1].value("k") is None
        assert runtimes["kv1"][1].value("k") == 5 and runtimes["kv1"][1].clock == 1
        for runtime, _ in runtimes.values():
            oob_request(runtime, {"op": "resume"})
        assert runtimes["kv2"][1].registers["k"] == (5, (1, "kv1"))
        assert client.call(front, {"op": "put", "key": "k", "value": 6}, 2)["ok"]
        eventually(lambda: runtimes["kv2"][1].value("k") == 6)   # a later put wins
    finally:
        for runtime, _ in runtimes.values():
            runtime.stop()
        client.close()
        slb.close()


# -- refusals ---------------------------------------------------------------------

def test_a_snapshot_not_accepted_is_refused_unless_forced(cluster):
    reports = credit_in_flight(cluster)
    cluster.save(1, reports, Outcome.REJECTED)
    cluster.save(2, reports, Outcome.INCOMPLETE)
    with pytest.raises(restore.RestoreRefused,
                       match=r"^snapshot 1 was rejected \(as the test says\); --force"):
        restore.load(cluster.store, 1, "b1", ["b2"])
    with pytest.raises(restore.RestoreRefused, match="^snapshot 2 was incomplete"):
        restore.load(cluster.store, 2, "b1", ["b2"])
    forced = restore.load(cluster.store, 1, "b2", ["b1"], force=True)
    assert forced.forced and forced.outcome is Outcome.REJECTED and len(forced.replay()) == 1


def test_a_snapshot_missing_a_process_is_refused_unless_forced(cluster):
    reports = credit_in_flight(cluster)
    cluster.save(1, {"b1": reports["b1"]})
    with pytest.raises(restore.RestoreRefused, match="^snapshot 1 has no state of b2; --force"):
        restore.load(cluster.store, 1, "b1", ["b2"])
    assert restore.load(cluster.store, 1, "b1", ["b2"], force=True).state["balances"]["a0"] == 70
    with pytest.raises(restore.RestoreRefused, match="^snapshot 1 has no state of b2$"):
        restore.load(cluster.store, 1, "b2", ["b1"], force=True)


def test_what_no_force_restores(tmp_path, cluster):
    with pytest.raises(restore.RestoreRefused, match="^no snapshot store at"):
        restore.load(tmp_path / "none.db", 1, "b1", ["b2"], force=True)
    assert not (tmp_path / "none.db").exists(), "a refused restore makes no empty store"
    cluster.save(1, credit_in_flight(cluster))
    with pytest.raises(restore.RestoreRefused, match="^no snapshot 7 in .*not judged yet"):
        restore.load(cluster.store, 7, "b1", ["b2"], force=True)
    cluster.save(2, {})   # as a batch judged by its schedules: a verdict, no state
    with pytest.raises(restore.RestoreRefused, match="^snapshot 2 holds no in-group state"):
        restore.load(cluster.store, 2, "b1", ["b2"], force=True)
    with pytest.raises(restore.RestoreRefused, match="channels from b2, not peers"):
        restore.load(cluster.store, 1, "b1", [], force=True)


def test_another_layout_or_version_is_refused(cluster):
    cluster.save(1, credit_in_flight(cluster))
    cluster.stop()
    with pytest.raises(restore.RestoreRefused,
                       match=r"^b1: snapshot 1 was taken under another program or layout: "
                             r"shards b1,b2 there, b1,b2,b3 here$"):
        restore.load(cluster.store, 1, "b1", ["b2"]).check(
            BankShard(NameOnly("b1"), ["b1", "b2", "b3"], ACCOUNTS, INITIAL))
    loaded = restore.load(cluster.store, 1, "b1", ["b2"])
    old = restore.Restore(**{**loaded.__dict__, "state": {**loaded.state, "layout": {
        **loaded.state["layout"], "version": 0}}})
    with pytest.raises(restore.RestoreRefused, match="version 0 there, 1 here"):
        old.check(BankShard(NameOnly("b1"), SHARDS, ACCOUNTS, INITIAL))
    with pytest.raises(restore.RestoreRefused, match="service bank there, kv here"):
        loaded.check(KvReplica(NameOnly("b1"), ["b2"]))


class NameOnly:
    """Enough of a runtime for an application to say its layout."""

    def __init__(self, name):
        self.name = name


def test_resume_asked_of_a_process_never_restored_is_an_error(cluster):
    cluster.start()
    with pytest.raises(oob.ProtocolError, match="b1 was not restored"):
        cluster.ask("b1", {"op": "resume"})


def test_a_refused_restore_ends_the_process_with_one_line(tmp_path, cluster):
    cluster.save(1, credit_in_flight(cluster), Outcome.REJECTED)
    cluster.stop()
    command = [sys.executable, "-m", "beaver.traffic.services.bank", "--name", "b1", "--dip", dip(1),
               "--peer", f"b2={dip(2)}", "--shards", "b1,b2", "--accounts", str(ACCOUNTS),
               "--restore", f"{cluster.store}:1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == ("b1: refused to restore: snapshot 1 was rejected (as the test says); "
                           "--force restores it all the same\n")
    forced = subprocess.Popen(command + ["--force"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        address = (dip(1), oob.OOB_PORT)
        eventually(lambda: _status(address), timeout=20)
        restored = _status(address)["restored"]
        assert (restored["snapshot"], restored["forced"], restored["held"]) == (1, True, True)
    finally:
        forced.terminate()
        out, _ = forced.communicate(timeout=20)
    assert '"restored": 1' in out


def _status(address):
    try:
        with socket.create_connection(address, timeout=1) as s:
            return oob.request(s, {"v": oob.VERSION, "op": "status"})
    except OSError:
        return None
