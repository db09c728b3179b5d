"""Range scans of the key-value replica (traffic/services/kvstore.py): a scan
is the sorted keys from its start on, registers and counters alike, written
by clients or by peers or brought back by a restore; its length is bounded,
and a request that is not a scan the store can serve gets an error reply."""
import random

from hypothesis import given, settings, strategies as st

from beaver.traffic.services.kvstore import MAX_SCAN, KvReplica


class Replies:
    """What KvReplica needs of a runtime: a name; the replies are kept."""
    name = "kv1"

    def __init__(self):
        self.replies = []

    def reply(self, client, message):
        self.replies.append(message)

    def send(self, peer, message):
        pass


def replica() -> tuple[KvReplica, Replies]:
    runtime = Replies()
    return KvReplica(runtime, ["kv2"]), runtime


def ask(kv: KvReplica, runtime: Replies, request: dict) -> dict:
    kv.on_request(request, None)
    return runtime.replies[-1]


def test_a_scan_is_the_next_keys_in_order_with_their_values():
    kv, runtime = replica()
    for key, value in (("user3", 30), ("user1", 10), ("user20", 200), ("user5", 50)):
        ask(kv, runtime, {"op": "put", "key": key, "value": value})
    ask(kv, runtime, {"op": "incr", "key": "user4", "by": 7})
    kv.on_peer({"op": "put", "key": "user0", "value": 0, "version": [1, "kv2"]}, "kv2")

    assert ask(kv, runtime, {"op": "scan", "key": "user2", "count": 3}) == {
        "ok": True, "items": [["user20", 200], ["user3", 30], ["user4", 7]]}
    assert ask(kv, runtime, {"op": "scan", "key": "user1", "count": 1})["items"] == [
        ["user1", 10]]   # the start itself, when set
    assert [k for k, _ in ask(kv, runtime, {"op": "scan", "key": "", "count": 100})["items"]] \
        == ["user0", "user1", "user20", "user3", "user4", "user5"]
    assert ask(kv, runtime, {"op": "scan", "key": "zzz", "count": 5})["items"] == []


def test_hostile_scans_get_one_error_and_change_nothing():
    kv, runtime = replica()
    ask(kv, runtime, {"op": "put", "key": "a", "value": 1})
    for bad in ({"op": "scan", "key": "a"}, {"op": "scan", "key": "a", "count": 0},
                {"op": "scan", "key": "a", "count": MAX_SCAN + 1},
                {"op": "scan", "key": "a", "count": True}, {"op": "scan", "key": "a", "count": 2.0},
                {"op": "scan", "key": "a", "count": "5"}, {"op": "scan", "key": 5, "count": 1},
                {"op": "scan", "key": ["a"], "count": 1}):
        reply = ask(kv, runtime, bad)
        assert reply["ok"] is False and reply["error"], bad
    assert kv.registers == {"a": (1, (1, "kv1"))} and kv._keys == ["a"]
    assert len(ask(kv, runtime, {"op": "scan", "key": "", "count": MAX_SCAN})["items"]) == 1


def test_a_restored_replica_scans_the_restored_keys():
    kv, runtime = replica()
    for key in ("b", "a", "c"):
        ask(kv, runtime, {"op": "put", "key": key, "value": key})
    state = kv.local_state()
    ask(kv, runtime, {"op": "put", "key": "d", "value": "d"})
    kv.restore(state)
    assert ask(kv, runtime, {"op": "scan", "key": "", "count": 10})["items"] == [
        ["a", "a"], ["b", "b"], ["c", "c"]]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["put", "incr", "peer-put", "peer-counter"]),
                          st.integers(0, 40), st.integers(1, 5)), max_size=80),
       st.integers(0, 45), st.integers(1, MAX_SCAN))
def test_every_scan_is_a_slice_of_the_sorted_store(writes, start, count):
    kv, runtime = replica()
    for op, k, n in writes:
        key = f"user{k}"
        if op == "put":
            kv.on_request({"op": "put", "key": key, "value": n}, None)
        elif op == "incr":
            kv.on_request({"op": "incr", "key": key, "by": n}, None)
        elif op == "peer-put":
            kv.on_peer({"op": "put", "key": key, "value": n, "version": [n, "kv2"]}, "kv2")
        else:
            kv.on_peer({"op": "counter", "key": key, "replica": "kv2", "count": n}, "kv2")
    every = sorted(set(kv.registers) | set(kv.counters))
    expected = [[k, kv.value(k)] for k in every if k >= f"user{start}"][:count]
    assert kv.scan(f"user{start}", count) == expected
    assert kv._keys == every
