"""The integration tests' invariants on hand-built snapshots, and the
injected bugs of the bank and the key-value store."""
from __future__ import annotations

import threading
from unittest.mock import ANY

from beaver.traffic.oob.protocol import ChannelState, Report
from beaver.traffic.analysis import checker
from beaver.traffic.outgroup import thirdparty
from beaver.traffic.services.bank import BankShard
from beaver.traffic.analysis.invariants import check, faults_at
from beaver.traffic.services.kvstore import KvReplica
from beaver.traffic.runtime.snapshots import Mode

from tests.support.runtimes import Deployment, deployment, eventually

__all__ = ["deployment"]   # the fixture


def kv(name: str, registers=None, counters=None, in_flight=(), dropped=()) -> Report:
    state = {"service": "kv", "registers": registers or {}, "counters": counters or {},
             "faults": {"dropped": list(dropped)}}
    other = "kv2" if name == "kv1" else "kv1"
    return Report(name, 1, True, local_state=state, channels={
        other: ChannelState(0, 0, [{"id": f"m{i}", "message": m}
                                   for i, m in enumerate(in_flight)])})


def bank(name: str, balances: dict, transfers=0, credits=(), lost=0) -> Report:
    state = {"service": "bank", "balances": balances, "activity": {}, "transfers": transfers,
             "faults": {"lost": lost}}
    return Report(name, 1, True, local_state=state, channels={
        "b2" if name == "b1" else "b1": ChannelState(0, 0, [
            {"id": f"c{i}", "message": {"op": "credit", "account": "a1", "amount": a}}
            for i, a in enumerate(credits)])})


def snapshot(*reports: Report) -> dict[str, Report]:
    return {r.process: r for r in reports}


CORRECT = snapshot(
    kv("kv1", registers={"k": [5, [2, "kv1"]], "audit:b1:1": [3, [1, "kv2"]]},
       counters={"n": {"kv1": 2, "kv2": 1}}),
    kv("kv2", registers={"audit:b1:1": [3, [1, "kv2"]]}, counters={"n": {"kv1": 1, "kv2": 1}},
       in_flight=[{"op": "put", "key": "k", "value": 5, "version": [2, "kv1"]},
                  {"op": "counter", "key": "n", "replica": "kv1", "count": 2}]),
    bank("b1", {"a0": 97}, transfers=1), bank("b2", {"a1": 100}, credits=[3]))


def test_a_consistent_snapshot_with_updates_and_credits_in_flight_holds_every_invariant():
    assert check(CORRECT, 200) == {"conserved": [], "replicas": [], "audits": []}
    assert faults_at(CORRECT) == {"conserved": 0, "replicas": 0, "audits": 0}


def test_without_the_channel_state_the_same_cut_breaks_the_total_and_the_replicas():
    no_channels = {name: Report(name, 1, True, local_state=r.local_state)
                   for name, r in CORRECT.items()}
    violations = check(no_channels, 200)
    assert violations["conserved"] == ["total 197, opened with 200"]
    assert violations["replicas"] == ["register k: kv1 (5, (2, 'kv1')), kv2 None",
                                      "counter n: kv1 {'kv1': 2, 'kv2': 1}, "
                                      "kv2 {'kv1': 1, 'kv2': 1}"]


def test_an_audit_for_a_transfer_the_cut_does_not_hold_is_an_alarm():
    early_bank = {**CORRECT, "b1": bank("b1", {"a0": 97}, transfers=0)}
    assert check(early_bank, 200)["audits"] == ["kv1 holds audit:b1:1, b1 made 0 transfers",
                                                "kv2 holds audit:b1:1, b1 made 0 transfers"]


def test_the_faults_are_ground_truth_only_and_counted_per_invariant():
    dropped = [{"op": "counter", "key": "n", "replica": "kv1", "count": 2},
               {"op": "put", "key": "k", "value": 5, "version": [2, "kv1"]}]
    faulty = {**CORRECT, "b1": bank("b1", {"a0": 97}, transfers=1, lost=4),
              "kv2": kv("kv2", counters={"n": {"kv1": 1}}, dropped=dropped)}
    assert faults_at(faulty) == {"conserved": 4, "replicas": 2, "audits": 0}


def test_a_dropped_update_an_update_in_flight_supersedes_is_no_fault():
    dropped = [{"op": "counter", "key": "n", "replica": "kv1", "count": 1}]
    later = {"op": "counter", "key": "n", "replica": "kv1", "count": 2}
    healing = {**CORRECT, "kv2": kv("kv2", counters={"n": {"kv1": 0}}, in_flight=[later],
                                    dropped=dropped)}
    assert faults_at(healing)["replicas"] == 0


class Runtime:
    """Stands in for the in-group runtime: records what the app sends."""

    def __init__(self, name: str):
        self.name = name
        self.sent: list[tuple[str, dict]] = []
        self.replies: list[dict] = []

    def send(self, peer, message):
        self.sent.append((peer, message))

    def reply(self, client, message):
        self.replies.append(message)

    def call_out(self, address, message):
        pass


def test_a_shard_that_loses_one_credit_in_n_keeps_the_loss_in_its_faults():
    shard = BankShard(Runtime("b1"), ["b1", "b2"], accounts=4, initial=10, lose_every=2)
    for amount in (1, 2, 3):   # a0 (b1) -> a1 (b2): three credits, the second lost
        shard.execute({"op": "transfer", "src": "a0", "dst": "a1", "amount": amount}, None)
    assert [m["amount"] for _, m in shard.runtime.sent] == [1, 3]
    state = shard.local_state()
    assert state["balances"]["a0"] == 4 and state["transfers"] == 3
    assert state["faults"] == {"lost": 2}


def test_a_replica_that_drops_an_update_counts_it_until_a_later_one_supersedes_it():
    replica = KvReplica(Runtime("kv2"), ["kv1"], drop_every=2)
    replica.on_peer({"op": "counter", "key": "n", "replica": "kv1", "count": 1}, "kv1")
    replica.on_peer({"op": "counter", "key": "n", "replica": "kv1", "count": 2}, "kv1")
    assert replica.local_state()["faults"] == {"dropped": [
        {"op": "counter", "key": "n", "replica": "kv1", "count": 2}]}
    assert replica.local_state()["counters"] == {"n": {"kv1": 1}}
    replica.on_peer({"op": "counter", "key": "n", "replica": "kv1", "count": 3}, "kv1")
    assert replica.local_state()["faults"] == {"dropped": []}
    assert replica.local_state()["counters"] == {"n": {"kv1": 3}}


def test_an_audit_through_the_third_party_alarms_only_on_the_baselines_cuts(
        deployment: Deployment):
    """The bank is snapshotted, then a transfer makes the third party write its
    audit into the store, then the store is snapshotted."""
    slb = deployment.slb()
    kv = deployment.front(slb, 1)
    third = deployment.endpoint("tp", 3)
    deployment.service("kv1", 1, lambda rt: KvReplica(rt, []))
    deployment.service("b1", 2, lambda rt: BankShard(rt, ["b1"], accounts=2, initial=10,
                                                     notify=third.address, audit=kv))
    client = deployment.endpoint("c1", 4)
    bank_front = deployment.front(slb, 2)
    stopped = threading.Event()
    serving = threading.Thread(target=thirdparty.serve, args=(third, stopped))
    serving.start()
    slb.snapshot_id = 1
    deployment.take("b1", 1)
    transfer = {"op": "transfer", "src": "a0", "dst": "a1", "amount": 3}
    assert client.call(bank_front, transfer, 2) == {"ok": True, "id": ANY, "re": ANY}
    eventually(lambda: deployment.apps["kv1"].value("audit:b1:1") == 3)
    deployment.take("kv1", 1)
    reports = {n: deployment.report(n, 1) for n in ("kv1", "b1")}
    stopped.set()
    serving.join()
    (truth,) = checker.check(deployment.finish(), [1])
    alarms = check(reports, 20)
    if deployment.mode is Mode.BEAVER:   # the marked audit made kv1 snapshot first
        assert truth.status == "consistent" and alarms["audits"] == []
    else:
        assert truth.status == "inconsistent"
        assert alarms["audits"] == ["kv1 holds audit:b1:1, b1 made 0 transfers"]
    assert alarms["conserved"] == alarms["replicas"] == []
