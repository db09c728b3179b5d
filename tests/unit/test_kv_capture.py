"""The key-value replica's incremental capture (traffic/services/kvstore.py): each
local state, copied from the last one and the keys written since, is the
state computed from scratch, and a state once captured never changes."""
import copy
import json
import random

from beaver.traffic.oob import deltas
from beaver.traffic.services.kvstore import KvReplica, superseded


class Quiet:
    """What KvReplica needs of a runtime: a name, replies and sends dropped."""
    name = "kv1"

    def reply(self, client, message):
        pass

    def send(self, peer, message):
        pass


def from_scratch(kv: KvReplica) -> dict:
    return {"registers": {k: [v, list(version)] for k, (v, version) in kv.registers.items()},
            "counters": {k: dict(counts) for k, counts in kv.counters.items()}}


def test_every_capture_is_the_whole_state_and_stays_as_it_was():
    rng = random.Random(5)
    kv = KvReplica(Quiet(), ["kv2"])
    captured = []
    for step in range(4000):
        key = f"k{rng.randrange(30)}"
        roll = rng.random()
        if roll < 0.3:
            kv.on_request({"op": "put", "key": key, "value": rng.randrange(9)}, None)
        elif roll < 0.45:
            kv.on_request({"op": "incr", "key": key, "by": rng.randrange(1, 4)}, None)
        elif roll < 0.65:
            kv.on_peer({"op": "put", "key": key, "value": rng.randrange(9),
                        "version": [rng.randrange(step + 2), "kv2"]}, "kv2")
        elif roll < 0.8:
            kv.on_peer({"op": "counter", "key": key, "replica": "kv2",
                        "count": rng.randrange(step + 2)}, "kv2")
        elif roll < 0.82 and captured:
            kv.restore(copy.deepcopy(rng.choice(captured)[0]))   # a rollback
        else:
            state = kv.local_state()
            assert {part: state[part] for part in ("registers", "counters")} == from_scratch(kv)
            assert (state["clock"], state["updates"]) == (kv.clock, kv.updates)
            for before, _ in captured[-3:]:   # derived from those (deltas.Derived): the same diff
                assert deltas.diff(before, state) == deltas.diff(json.loads(json.dumps(before)),
                                                                 json.loads(json.dumps(state)))
            captured.append((state, json.dumps(state, sort_keys=True)))
    assert len(captured) > 500
    for state, text in captured:
        assert json.dumps(state, sort_keys=True) == text, "a captured state changed later"


def test_faults_are_the_dropped_updates_not_yet_superseded_in_every_capture():
    """With the injected bug, every capture's faults is every update the
    replica ignored that its state has not since superseded, worked out
    here from all updates sent (the capture shares the object only while
    that list stays empty)."""
    rng = random.Random(7)
    kv = KvReplica(Quiet(), ["kv2"], drop_every=3)
    sent, emptied, nonempty = [], 0, 0
    for step in range(3000):
        key = f"k{rng.randrange(3)}"   # few keys: an ignored update is soon superseded
        roll = rng.random()
        if roll < 0.3:
            kv.on_request({"op": "put", "key": key, "value": step}, None)
        elif roll < 0.55:
            sent.append({"op": "put", "key": key, "value": step,
                         "version": [step - rng.randrange(20), "kv2"]})
            kv.on_peer(dict(sent[-1]), "kv2")
        elif roll < 0.8:
            sent.append({"op": "counter", "key": key, "replica": "kv2",
                         "count": max(0, step - rng.randrange(20))})
            kv.on_peer(dict(sent[-1]), "kv2")
        else:
            ignored = sent[2::3]   # the 3rd, 6th, .. update received
            registers = {k: (v, tuple(version)) for k, (v, version)
                         in kv.local_state()["registers"].items()}
            expected = [u for u in ignored if not superseded(registers, kv.counters, u)]
            assert kv.local_state()["faults"] == {"dropped": expected}
            emptied += not expected
            nonempty += bool(expected)
    assert emptied > 20 and nonempty > 20


def test_a_capture_shares_every_part_unchanged_since_the_last_one():
    """A report diffs the parts shared with the state before by identity
    alone, so a capture makes a new object only for what changed."""
    kv = KvReplica(Quiet(), ["kv2"])
    kv.on_request({"op": "incr", "key": "c", "by": 2}, None)
    first = kv.local_state()
    kv.on_request({"op": "put", "key": "r", "value": 1}, None)
    second = kv.local_state()
    assert second["registers"] is not first["registers"]
    assert second["registers"] == {"r": [1, [1, "kv1"]]}
    for part in ("layout", "counters", "faults"):
        assert second[part] is first[part], part
    kv.on_request({"op": "incr", "key": "c", "by": 1}, None)
    third = kv.local_state()
    assert third["registers"] is second["registers"]
    assert third["counters"] == {"c": {"kv1": 3}} and first["counters"] == {"c": {"kv1": 2}}
    assert kv.local_state()["layout"] == {"service": "kv", "version": 1,
                                          "replicas": ["kv1", "kv2"]}


def test_a_restored_replica_captures_the_faults_it_was_restored_with():
    kv = KvReplica(Quiet(), ["kv2"], drop_every=1)
    kv.on_peer({"op": "put", "key": "a", "value": 1, "version": [5, "kv2"]}, "kv2")
    with_fault = kv.local_state()
    assert with_fault["faults"] == {"dropped": [
        {"op": "put", "key": "a", "value": 1, "version": [5, "kv2"]}]}
    kv.restore(copy.deepcopy({**with_fault, "faults": {"dropped": []}}))
    assert kv.local_state()["faults"] == {"dropped": []}
    kv.restore(copy.deepcopy(with_fault))
    assert kv.local_state()["faults"] == with_fault["faults"]


def test_a_capture_with_nothing_changed_is_the_last_one():
    """Reported as the cut before's state ("same_state"), not diffed."""
    kv = KvReplica(Quiet(), ["kv2"], drop_every=2)
    first = kv.local_state()
    assert kv.local_state() is first
    kv.on_request({"op": "get", "key": "a"}, None)
    assert kv.local_state() is first
    kv.on_peer({"op": "put", "key": "a", "value": 1, "version": [3, "kv2"]}, "kv2")
    applied = kv.local_state()
    assert applied is not first and applied["registers"] == {"a": [1, [3, "kv2"]]}
    kv.on_peer({"op": "put", "key": "b", "value": 2, "version": [4, "kv2"]}, "kv2")  # dropped
    dropped = kv.local_state()
    assert dropped is not applied and dropped["updates"] == 2
    assert dropped["registers"] is applied["registers"] and len(dropped["faults"]["dropped"]) == 1
    kv.on_request({"op": "put", "key": "b", "value": 5}, None)   # clock 1: older than [4, kv2]
    assert kv.local_state()["faults"] == {"dropped": [
        {"op": "put", "key": "b", "value": 2, "version": [4, "kv2"]}]}
