"""Garbage collection on its own (counts, the collector, the ground truth),
then live: a reference handed through the out-group while a snapshot is
under way."""
from __future__ import annotations

import threading

from beaver.traffic.analysis import checker
from beaver.traffic.outgroup import forwarder
from beaver.traffic.analysis.gc import collect, counts, live
from beaver.traffic.services.objects import ObjectFunction
from beaver.traffic.runtime.snapshots import Mode

from tests.support.runtimes import Deployment, deployment

__all__ = ["deployment"]   # the fixture


def function(name: str, created: int, counts: dict, consumed: dict) -> dict:
    return {"service": "gc", "function": name, "created": created, "counts": counts,
            "consumed": consumed}


def test_a_count_sums_every_functions_references_to_an_object_created_in_the_snapshot():
    states = [function("fa", 3, {"fa:1": 2, "fa:2": 1, "fa:3": 1, "fa:9": 1}, {}),
              function("fb", 0, {"fa:1": -1, "fa:2": -1, "fa:4": -1}, {"fa:2": 1})]
    assert counts(states) == {"fa:1": 1, "fa:2": 0, "fa:3": 1}
    assert collect(states) == {"fa:2"}


def test_an_object_consumed_after_the_cut_or_never_was_live():
    at_cut = [function("fa", 3, {"fa:1": 1, "fa:2": 2, "fa:3": 1}, {}),
              function("fb", 0, {"fa:1": -1, "fa:2": -2}, {"fa:1": 1, "fa:2": 2})]
    final = [function("fa", 3, {"fa:1": 2, "fa:2": 2, "fa:3": 1}, {}),
             function("fb", 0, {"fa:1": -2, "fa:2": -2}, {"fa:1": 2, "fa:2": 2})]
    assert live({"fa:1", "fa:2", "fa:3"}, at_cut, final) == {"fa:1", "fa:3"}


class Runtime:
    def __init__(self, name: str):
        self.name = name
        self.replies = []

    def reply(self, client, message):
        self.replies.append(message)


def test_a_function_counts_the_references_its_requests_made_and_used_up():
    fa = ObjectFunction(Runtime("fa"))
    for request in ({"op": "create"}, {"op": "share", "ref": "fa:1"},
                    {"op": "consume", "ref": "fa:1"}, {"op": "share"}):
        fa.on_request(request, None)
    assert fa.runtime.replies[:3] == [{"ok": True, "ref": "fa:1"}, {"ok": True, "ref": "fa:1"},
                                      {"ok": True}]
    assert fa.runtime.replies[3]["ok"] is False
    assert fa.local_state() == function("fa", 1, {"fa:1": 1}, {"fa:1": 1})


def test_a_reference_handed_on_through_the_queue_keeps_its_object_only_on_beavers_cut(
        deployment: Deployment):
    """fa is snapshotted; the client takes a second reference there, the queue
    hands it to fb to consume; then fb is snapshotted.  The client still holds
    its first reference."""
    deployment.service("fa", 1, ObjectFunction)
    deployment.service("fb", 2, ObjectFunction)
    slb = deployment.slb()
    fa, fb = deployment.front(slb, 1), deployment.front(slb, 2)
    client, queue = deployment.endpoint("g1", 3), deployment.endpoint("q1", 4)
    stop = threading.Event()
    serving = threading.Thread(target=forwarder.serve, args=(queue, stop))
    serving.start()
    ref = client.call(fa, {"op": "create"}, 2)["ref"]
    slb.snapshot_id = 1
    deployment.take("fa", 1)
    assert client.call(fa, {"op": "share", "ref": ref}, 2)["ok"]
    assert client.call(queue.address, {"op": "forward", "to": list(fb),
                                       "request": {"op": "consume", "ref": ref}}, 2)["ok"]
    deployment.take("fb", 1)
    states = [deployment.report(n, 1).local_state for n in ("fa", "fb")]
    assert client.call(fb, {"op": "consume", "ref": ref}, 2)["ok"]   # the first reference
    final = [deployment.apps[n].local_state() for n in ("fa", "fb")]
    stop.set()
    serving.join()
    (truth,) = checker.check(deployment.finish(), [1])
    deleted = collect(states)
    if deployment.mode is Mode.BEAVER:   # the marked consume made fb snapshot first
        assert truth.status == "consistent" and deleted == set()
    else:   # the consume without the share that made its reference: a live object deleted
        assert truth.status == "inconsistent"
        assert deleted == {ref} and live(deleted, states, final) == {ref}
    assert collect(final) == {ref}   # garbage at the end
