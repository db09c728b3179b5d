"""The key-value replica's incremental capture (traffic/services/kvstore.py): each
local state, copied from the last one and the keys written since, is the
state computed from scratch, and a state once captured never changes."""
import copy
import json
import random

from beaver.traffic.services.kvstore import KvReplica


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
            captured.append((state, json.dumps(state, sort_keys=True)))
    assert len(captured) > 500
    for state, text in captured:
        assert json.dumps(state, sort_keys=True) == text, "a captured state changed later"
