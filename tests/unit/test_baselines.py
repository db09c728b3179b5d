"""Beaver against the baselines, live on loopback, judged by the checker.

The seed's Figure 3: p1 and p2 serve different VIPs and never talk; an
out-group relay asks p1 and, on the reply, at once asks p2.  The snapshot
reaches p1 before the chain and p2 after it.  Beaver's SLB marks the relay's
second request, so p2 records its state before handling it; Lai-Yang and
polling take p2's state after it, and nothing in them can notice.
"""
from __future__ import annotations

import pytest

from beaver.traffic.services.bank import BankShard, snapshot_total
from beaver.traffic.analysis.checker import check
from beaver.traffic.runtime.snapshots import Mode

from tests.support.runtimes import Deployment, Recorder, deployment, eventually

__all__ = ["deployment"]   # the fixture


def figure_3(deployment: Deployment, slbs: int):
    """Runs the scenario with one SLB (both VIPs) or two (g0 for p1's VIP,
    g1 for p2's, g1 lagging behind: Figure 5).  Returns the verdict for ID 1."""
    deployment.service("p1", 1, Recorder)
    deployment.service("p2", 2, Recorder)
    g0 = deployment.slb(1)
    g1 = g0 if slbs == 1 else deployment.slb(2)
    to_p1, to_p2 = deployment.front(g0, 1), deployment.front(g1, 2)
    relay = deployment.endpoint("relay", 1)

    g0.snapshot_id = 1            # the gateway goes first...
    deployment.take("p1", 1)      # ...then the controller reaches p1
    assert relay.call(to_p1, {"op": "ask"}, timeout=2)["ok"]
    assert relay.call(to_p2, {"op": "ask"}, timeout=2)["ok"]   # at once, on the reply
    g1.snapshot_id = 1
    deployment.take("p2", 1)      # p2 has its turn at last

    reports = [deployment.report(name, 1) for name in ("p1", "p2")]
    assert all(r.taken for r in reports)   # complete: a baseline would accept it
    (verdict,) = check(deployment.finish(), [1])
    return verdict, g1


def test_figure_3_beaver_is_consistent_and_the_baselines_are_not(deployment):
    verdict, _ = figure_3(deployment, slbs=1)
    if deployment.mode is Mode.BEAVER:
        assert verdict.status == "consistent"
    else:
        assert verdict.status == "inconsistent"
        assert [str(e) for e in verdict.witness] == [
            "p1#1 send p1:1", "relay#1 recv p1:1", "relay#2 send relay:2", "p2#0 recv relay:2"]


@pytest.mark.parametrize("deployment", [Mode.BEAVER], indirect=True)
def test_figure_5_a_lagging_gateway_gives_the_cut_beavers_controller_must_reject(deployment):
    verdict, g1 = figure_3(deployment, slbs=2)
    assert verdict.status == "inconsistent"
    # what OGM detects: g1 forwarded an old-ID packet after g0 had switched
    assert g1.forwarded == [0]


def test_a_bank_snapshot_total_holds_and_breaks_under_polling(deployment):
    for name, n, peer, k in (("b1", 1, "b2", 2), ("b2", 2, "b1", 1)):
        deployment.service(name, n, lambda rt: BankShard(rt, ["b1", "b2"], accounts=4,
                                                         initial=100), peers={peer: k}, vip_of=1)
    slb = deployment.slb()
    client = deployment.endpoint("client", 1)

    slb.snapshot_id = 1
    deployment.take("b1", 1)
    # a0 lives on b1, a1 on b2: b1 debits, then its credit message reaches b2
    assert client.call(deployment.front(slb, 1),
                       {"op": "transfer", "src": "a0", "dst": "a1", "amount": 30}, 2)["ok"]
    eventually(lambda: deployment.apps["b2"].balances["a1"] == 130)
    deployment.take("b2", 1)
    reports = [deployment.report(name, 1) for name in ("b1", "b2")]
    total = snapshot_total(reports)
    if deployment.mode is Mode.POLLING:
        assert total == 430   # b1 before the debit, b2 after the credit: money appears
    else:
        assert reports[1].trigger == "peer"   # b1's stamp reached b2 before the credit did
        assert total == 400
