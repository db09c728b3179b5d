"""The deadlock use case live on loopback: lock managers on the in-group
runtime; a deadlocking pair and an ordinary workflow through the forwarder,
a snapshot in the middle of the deadlock; a phantom from the out-group."""
from __future__ import annotations

import threading
import time
from unittest.mock import ANY

from beaver.traffic.analysis.checker import check
from beaver.traffic.analysis.deadlock import cycles, episodes, judge, received_us, waits
from beaver.traffic.outgroup.forwarder import serve
from beaver.traffic.services.locks import LockManager
from beaver.traffic.runtime.snapshots import Mode
from beaver.traffic.outgroup.workflows import deadlocking, ordinary

from tests.support.runtimes import Deployment, deployment, eventually

__all__ = ["deployment"]   # the fixture


def test_an_injected_deadlock_is_in_a_snapshot_taken_while_it_lasts(tmp_path):
    deployment = Deployment(tmp_path, Mode.BEAVER)
    try:
        deployment.service("la", 1, LockManager)
        deployment.service("lb", 2, LockManager)
        slb = deployment.slb()
        a, b = deployment.front(slb, 1), deployment.front(slb, 2)
        stop = threading.Event()
        sides, threads = {}, []
        for side, n in (("a", 3), ("b", 4)):
            endpoint = deployment.endpoint(f"w{side}", n)
            threads.append(threading.Thread(target=lambda s=side, e=endpoint: sides.update(
                {s: deadlocking(e, s, a, b, stop, period=0.6, wait=0.3)})))
        forwarder, forwarding = deployment.endpoint("f1", 5), threading.Event()
        serving = threading.Thread(target=serve, args=(forwarder, forwarding))
        serving.start()
        rounds = {}
        worker = deployment.endpoint("w1", 6)
        threads.append(threading.Thread(target=lambda: rounds.update(ordinary(
            worker, a, b, stop, via=forwarder.address, via_ratio=1.0))))
        for thread in threads:
            thread.start()
        found = []
        deadline = time.monotonic() + 5
        snapshot_id = 0
        while not found and time.monotonic() < deadline:
            snapshot_id += 1
            slb.snapshot_id = snapshot_id
            for name in ("la", "lb"):
                deployment.take(name, snapshot_id)
            states = [deployment.report(n, snapshot_id).local_state for n in ("la", "lb")]
            found = cycles(waits(states))
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join()
        forwarding.set()   # last: a workflow may still wait on it
        serving.join()
        trace = deployment.finish()
        assert rounds["via"] >= 1 and rounds["timeouts"] == 0
        known = episodes(sides.values(), received_us(trace))
        assert known and all(e.existed for e in known)
        assert found and found[0] in {e.requests for e in known}
    finally:
        deployment.finish()


def test_a_phantom_deadlock_appears_only_on_the_baselines_cuts(deployment: Deployment):
    """w1 waits at lb for L1, which w2 holds; lb is snapshotted; w2 releases L1
    (w1 gets it) and, told so, asks la for L0, which w1 holds; then la is
    snapshotted.  The two waits never existed at once."""
    deployment.service("la", 1, LockManager)
    deployment.service("lb", 2, LockManager)
    slb = deployment.slb()
    la, lb = deployment.front(slb, 1), deployment.front(slb, 2)
    w1, w2 = deployment.endpoint("w1", 3), deployment.endpoint("w2", 4)
    granted = {"ok": True, "granted": ANY, "id": ANY, "re": ANY}
    assert w2.call(la, {"op": "acquire", "lock": "L0"}, 2) == granted
    assert w2.call(lb, {"op": "acquire", "lock": "L1"}, 2) == granted
    waiting = w1.send(la, {"op": "acquire", "lock": "L0"})
    assert w2.call(la, {"op": "release", "lock": "L0"}, 2)["ok"]
    assert w1.receive(2)[0]["re"] == waiting              # w1 holds L0 now
    waiting = w1.send(lb, {"op": "acquire", "lock": "L1"})
    eventually(lambda: deployment.apps["lb"].waiters.get("L1"))
    slb.snapshot_id = 1
    deployment.take("lb", 1)
    assert w2.call(lb, {"op": "release", "lock": "L1"}, 2)["ok"]
    assert w1.receive(2)[0]["re"] == waiting              # w1 holds L1 too
    w2.send(la, {"op": "acquire", "lock": "L0"})          # w2's next round: waits for w1
    eventually(lambda: deployment.apps["la"].waiters.get("L0"))
    deployment.take("la", 1)
    states = [deployment.report(n, 1).local_state for n in ("la", "lb")]
    (truth,) = check(deployment.finish(), [1])
    reported = cycles(waits(states))
    if deployment.mode is Mode.BEAVER:   # the marked acquire made la snapshot before it
        assert truth.status == "consistent" and reported == []
    else:
        assert truth.status == "inconsistent" and len(reported) == 1
        assert judge(reported, [], [(0, 0)]).phantom == 1
