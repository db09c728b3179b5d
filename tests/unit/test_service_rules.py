"""The services check what their peers send them (issue 25, item 7): the
bank applies no credit that is not a positive amount to one of its
accounts, and a message ID once; a replica refuses malformed updates and
applies a repeated one to no effect.  A refused message is counted by the
runtime and changes nothing."""
from __future__ import annotations

import socket

import pytest

from beaver.traffic.messages import Refused
from beaver.traffic.runtime.datagrams import PeerKind
from beaver.traffic.runtime.snapshots import Mode
from beaver.traffic.services.kvstore import KvReplica
from beaver.traffic.services.once import WINDOW, AppliedOnce

from tests.support.runtimes import Deployment, dip, eventually
from tests.unit.test_runtime import stamp
from tests.unit.test_services import bank_pair

REFUSED = "refused by the application"


@pytest.fixture
def beaver(tmp_path):
    deployment = Deployment(tmp_path, Mode.BEAVER)
    yield deployment
    deployment.finish()


def as_peer(n: int, to: int, datagrams: list[bytes]):
    """Sends datagrams to dip(to):4790 from peer dip(n)'s address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((dip(n), 0))
        for datagram in datagrams:
            sock.sendto(datagram, (dip(to), 4790))


def credit(message_id: str, account, amount) -> bytes:
    return stamp(0, PeerKind.APP, "b2", {"id": message_id, "op": "credit", "account": account,
                                         "amount": amount})


def test_a_peer_credit_of_a_negative_amount_is_refused_and_changes_nothing(beaver, caplog):
    bank_pair(beaver)
    b1, runtime = beaver.apps["b1"], beaver.runtimes["b1"]
    before = b1.local_state()
    as_peer(4, 3, [credit("b2:900", "a0", -1_000_000), credit("b2:901", "a0", 0),
                   credit("b2:902", "a0", 2.5), credit("b2:903", "a1", 5),   # a1 is b2's
                   credit("b2:904", "a99", 5)])
    eventually(lambda: runtime.drops[REFUSED] == 5)
    assert b1.local_state() == before and runtime.drops == {REFUSED: 5}
    assert ("b1: the application refused b2:900 from b2: a credit of -1000000 to 'a0'"
            in caplog.text)


def test_a_repeated_message_id_counts_once(beaver):
    bank_pair(beaver)
    b1, runtime = beaver.apps["b1"], beaver.runtimes["b1"]
    as_peer(4, 3, [credit("b2:900", "a0", 5)] * 3)
    eventually(lambda: runtime.drops[REFUSED] == 2)
    assert b1.balances["a0"] == 1005
    assert runtime.snapshots.received == {"b2": 3}   # all three arrived; one was applied


def test_a_credit_that_names_another_sender_is_refused(beaver):
    bank_pair(beaver)
    b1, runtime = beaver.apps["b1"], beaver.runtimes["b1"]
    as_peer(4, 3, [credit("c1:5", "a0", 5), credit("b2", "a0", 5)])
    eventually(lambda: runtime.drops[REFUSED] == 2)
    assert b1.balances["a0"] == 1000


def test_applied_once_refuses_repeats_and_ids_too_old_to_tell_and_keeps_a_window():
    applied = AppliedOnce()
    applied.check("b2:5", "b2")
    applied.check("b2:3", "b2")        # out of order: still new
    applied.check("b1:5", "b1")        # another sender's numbers are its own
    with pytest.raises(Refused, match="applied before"):
        applied.check("b2:5", "b2")
    for n in range(6, 3 * WINDOW):
        applied.check(f"b2:{n}", "b2")
    with pytest.raises(Refused, match="older than"):
        applied.check("b2:4", "b2")    # never applied, but no longer tellable
    assert len(applied._applied["b2"]) <= 2 * WINDOW + 1
    for bad in ("b2:-1", "b2:1e3", "b2:", "b3:7"):
        with pytest.raises(Refused, match="is not an ID of b2's"):
            applied.check(bad, "b2")


def kv_update(message_id: str, **update) -> bytes:
    return stamp(0, PeerKind.APP, "kv2", {"id": message_id, **update})


def test_a_replica_refuses_malformed_updates_and_a_repeat_changes_nothing(beaver):
    beaver.service("kv1", 1, lambda rt: KvReplica(rt, ["kv2"]), peers={"kv2": 2})
    kv1, runtime = beaver.apps["kv1"], beaver.runtimes["kv1"]
    as_peer(2, 1, [
        kv_update("kv2:1", op="counter", key="n", replica="kv2", count=-3),
        kv_update("kv2:2", op="counter", key="n", replica="kv2", count="3"),
        kv_update("kv2:3", op="put", key="k", value=1, version=["x", "kv2"]),
        kv_update("kv2:4", op="put", key=["k"], value=1, version=[1, "kv2"]),
        kv_update("kv2:5", op="drop", key="k"),
    ])
    eventually(lambda: runtime.drops[REFUSED] == 5)
    assert (kv1.registers, kv1.counters, kv1.updates) == ({}, {}, 0)
    as_peer(2, 1, [kv_update("kv2:6", op="counter", key="n", replica="kv2", count=3)] * 2)
    eventually(lambda: kv1.updates == 2)
    assert kv1.value("n") == 3 and runtime.drops == {REFUSED: 5}
