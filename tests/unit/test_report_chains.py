"""A run's local states as a chain (traffic/oob/cuts.py): each cut's state
goes as its changes from the previous cut's in the same answer, the first
from the base the controller holds.  Whatever the states, the controller
rebuilds each one exactly; what goes is only what changed since the cut
before; and an answer whose chain does not hold is refused with one line."""
from __future__ import annotations

import json
import queue

import pytest
from hypothesis import given, settings, strategies as st

from beaver.control.config import ProcessConfig
from beaver.traffic.oob import cuts as by_cut
from beaver.traffic.oob import deltas
from beaver.traffic.oob import protocol as oob
from beaver.traffic.oob.cuts import Cut
from beaver.traffic.oob.links import ProcessLink
from beaver.traffic.oob.protocol import ProtocolError, Report
from beaver.traffic.runtime.snapshots import Mode, Snapshots

from tests.support.runtimes import client_socket, dip, oob_request, runtimes, send_request, vip
from tests.unit.test_deltas import Keys

__all__ = ["runtimes"]   # the fixture

# JSON values as a service's state holds them: 1, 1.0 and True apart in
# dicts; a list is compared whole, by == (deltas.py), so it holds no two
# values that are == but of another type.
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.5, 1.0]),
                    st.sampled_from(["", "a", "b"]))
lists = st.lists(st.one_of(st.integers(-3, 3), st.sampled_from(["", "a"])), max_size=3)
values = st.recursive(st.one_of(scalars, lists), lambda inner: st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]), inner, max_size=4), max_leaves=12)
states = st.dictionaries(st.sampled_from(["k0", "k1", "k2", "k3", "k4"]), values, max_size=5)

# Each cut: a new state, the previous cut's own state object (one record),
# a state not taken yet, or an error (IDs not kept).
kinds = st.sampled_from(["state", "state", "state", "same", "not taken", "error"])


def taken(snapshot_id: int, state) -> Report:
    return Report("p1", snapshot_id, True, "oob", 1, state, {}, snapshot_id, snapshot_id)


def wire(value):
    return json.loads(json.dumps(value))


def as_json(value) -> str:
    """Tells 1, 1.0 and True apart, as == does not."""
    return json.dumps(value, sort_keys=True)


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(st.tuples(kinds, states, st.integers(1, 3)), min_size=1, max_size=12),
       st.one_of(st.none(), states))
def test_every_state_of_a_chain_is_rebuilt_exactly(steps, base_state):
    first = at = 100
    cuts, last = [], None
    for kind, state, count in steps:
        if kind == "error":
            cuts.append(Cut(at, count, "not kept"))
        elif kind == "not taken":
            cuts.append(Cut(at, count, Report("p1", at, False, current_id=at - 1)))
        else:
            own = last.local_state if kind == "same" and last is not None else state
            cuts.append(Cut(at, count, taken(at, own)))
        last = cuts[-1].answer if kind in ("state", "same") else None
        at += count
    count = at - first
    base = None if base_state is None else (7, base_state)
    answer = wire(by_cut.encode(first, count, cuts, base))
    held = None if base is None else (7, wire(base_state))
    got = by_cut.decode(answer, first, count, held)
    assert [(c.first, c.count) for c in got] == [(c.first, c.count) for c in cuts]
    for sent, rebuilt in zip(cuts, got):
        if isinstance(sent.answer, str):
            assert rebuilt.answer == sent.answer
        else:
            assert rebuilt.answer.delta is None
            assert as_json(rebuilt.answer.local_state) == as_json(sent.answer.local_state)
            assert rebuilt.answer == Report.from_message(wire(sent.answer.to_message()))
    assert as_json(held) == as_json(None if base is None else (7, base_state)), \
        "the held base is never changed"


class Drift:
    """A state of many keys of which each capture changes one, sharing the
    others with the capture before, as the key-value store's does."""

    def __init__(self):
        self.keys, self.captures = {f"k{i}": [i, "v"] for i in range(200)}, 0

    def capture(self):
        self.captures += 1
        self.keys = {**self.keys, f"k{self.captures}": [self.captures, "changed"]}
        return {"keys": self.keys, "captures": self.captures}


def test_each_cut_sends_only_what_changed_since_the_cut_before():
    s = Snapshots("p1", [], Mode.BEAVER, Drift().capture, 64)
    for snapshot_id in range(1, 11):
        s.oob(snapshot_id)                    # one record, one state, an ID each
    answer = by_cut.encode(2, 9, s.cuts(2, 9), (1, s.local_state(1)))
    deltas_sent = [c["report"]["delta"] for c in answer["cuts"]]
    assert deltas_sent[0] == {"base": 1, "changes": {
        "set": {"captures": 2}, "in": {"keys": {"set": {"k2": [2, "changed"]}}}}}
    for snapshot_id, delta in zip(range(3, 11), deltas_sent[1:]):
        assert delta == {"previous": snapshot_id - 1, "changes": {
            "set": {"captures": snapshot_id},
            "in": {"keys": {"set": {f"k{snapshot_id}": [snapshot_id, "changed"]}}}}}
    # Each cut's share stays the same however long the run: no cut holds
    # what the ones before it changed.
    sizes = [len(json.dumps(c["report"])) for c in answer["cuts"][1:]]
    assert max(sizes) - min(sizes) <= 4, sizes
    rebuilt = by_cut.decode(wire(answer), 2, 9, (1, wire(s.local_state(1))))
    assert [c.answer.local_state for c in rebuilt] == [s.local_state(n) for n in range(2, 11)]


def test_the_link_rebuilds_a_run_from_the_base_it_holds_and_the_chain(runtimes):
    runtime, _ = runtimes("p1", 1, Keys)
    client = client_socket()
    answers = queue.SimpleQueue()
    link = ProcessLink(ProcessConfig("p1", *runtime.oob_address), 2.0, answers.put)
    try:
        for snapshot_id in range(1, 13):      # every ID its own state
            send_request(client, dip(1), vip(1), {"id": f"r{snapshot_id}",
                                                  "key": snapshot_id % 5}, mark=snapshot_id)
        got = {}
        for first in (1, 7):                  # the second run from the base 6, held
            link.ask_run("report", first, 6, None)
            answered = answers.get(timeout=5)
            assert answered.error is None, answered.error
            got.update(by_cut.per_id(answered.cuts))
        for snapshot_id in range(1, 13):
            whole = Report.from_message(oob_request(runtime, {"op": "report",
                                                              "id": snapshot_id}))
            assert got[snapshot_id] == whole
        # What the second run's answer is on the wire: a chain from 6.
        sent = oob_request(runtime, {"op": "report", "first": 7, "count": 6, "base": 6})
        assert [c["report"]["delta"].get("base", c["report"]["delta"].get("previous"))
                for c in sent["cuts"]] == [6, 7, 8, 9, 10, 11]
    finally:
        link.close()
        client.close()


def state(n: int) -> dict:
    return {"x": n, "keep": [1, 2]}


def report_of(snapshot_id: int, **local) -> dict:
    message = taken(snapshot_id, None).to_message()
    del message["local_state"]
    return {**message, **local}


def chained(*reports: dict, first: int = 10) -> dict:
    """An answer of one-ID cuts from first, with these reports; errors as text."""
    entries = [{"first": first + i, "count": 1, **({"error": r} if isinstance(r, str)
                                                   else {"report": r})}
               for i, r in enumerate(reports)]
    return {"v": 1, "op": "cuts", "first": first, "count": len(reports), "items": [],
            "cuts": entries}


def change(previous, changes=None) -> dict:
    return {"delta": {"previous": previous, "changes": changes or {"set": {"x": 2}}}}


HELD = (5, state(5))


@pytest.mark.parametrize("answer, problem", [
    (chained(report_of(10, local_state=state(10)), report_of(11, **change(9))),
     "the cut from 11: changes from 9's state, but the previous cut is 10's"),
    (chained(report_of(10, local_state=state(10)), report_of(11, **change(5))),
     "the cut from 11: changes from 5's state, but the previous cut is 10's"),
    (chained(report_of(10, **change(9))),
     "the cut from 10: changes from 9's state, after no cut taken"),
    (chained(report_of(10, local_state=state(10)), "not kept", report_of(12, **change(10))),
     "the cut from 12: changes from 10's state, after no cut taken"),
    (chained(report_of(10, local_state=state(10)), "not kept", report_of(12, **change(11))),
     "the cut from 12: changes from 11's state, after no cut taken"),
    (chained(report_of(10, local_state=state(10)),
             {**report_of(11), "taken": False, "trigger": ""}, report_of(12, **change(11))),
     "the cut from 12: changes from 11's state, after no cut taken"),
    (chained(report_of(1, local_state=state(1)), report_of(2, **change(True)), first=1),
     "the cut from 2: changes from True's state, but the previous cut is 1's"),
    (chained(report_of(10, local_state=state(10)), report_of(11, **change(10, {"del": ["y"]}))),
     "p1: changes that do not fit their base: 'y' deleted"),
    (chained(report_of(10, local_state=state(10)),
             report_of(11, **change(10, {"in": {"x": {"set": {"a": 1}}}}))),
     "p1: changes that do not fit their base: a change of keys applied to a int"),
    (chained(report_of(10, local_state=state(10)), report_of(11, **change(10, 5))),
     "p1: changes that do not fit their base"),
    (chained(report_of(10, local_state=state(10)),
             report_of(11, delta={"previous": 10, "base": 5, "changes": {}})),
     "a cut's changes from both a base and the previous cut"),
    (chained(report_of(10, delta={"base": 4, "changes": {}})),
     "p1: changes from the state at 4, but the state held is 5's"),
    (chained(report_of(10, delta={"base": 10, "changes": {}})),
     "p1: changes from the state at 10, but the state held is 5's"),
    (chained(report_of(10, local_state=state(10)),
             report_of(11, same_state=True, local_state=state(3))),
     "a cut with the previous cut's state carries one of its own"),
    (chained(report_of(10, local_state=state(10)),
             report_of(11, same_state=True, **change(10))),
     "a cut with the previous cut's state carries one of its own"),
    (chained("not kept", report_of(11, same_state=True)),
     "a cut with the previous cut's state, after none"),
    (chained(report_of(10, local_state=state(10)), report_of(11, same_state=1)),
     "a cut's same_state must be true or false, not 1"),
])
def test_a_chain_that_does_not_hold_is_refused_with_one_line(answer, problem):
    with pytest.raises(ProtocolError, match=problem.replace("(", r"\(")) as e:
        by_cut.decode(answer, answer["first"], answer["count"], HELD)
    assert "\n" not in str(e.value)


def test_a_chain_that_holds_gives_each_cut_its_state():
    answer = chained(report_of(10, delta={"base": 5, "changes": {"set": {"x": 10}}}),
                     report_of(11, **change(10, {"set": {"x": 11}})),
                     report_of(12, same_state=True),
                     "not kept",
                     report_of(14, delta={"base": 5, "changes": {"del": ["keep"]}}),
                     report_of(15, **change(14, {"set": {"x": 15}})))
    got = by_cut.decode(answer, 10, 6, HELD)
    assert [c.answer if isinstance(c.answer, str) else c.answer.local_state for c in got] == \
        [state(10), state(11), state(11), "not kept", {"x": 5}, {"x": 15}]
    assert got[2].answer.local_state is got[1].answer.local_state, "one state, not two"
    assert HELD == (5, state(5))


@settings(max_examples=300, deadline=None, database=None)
@given(values, values)
def test_diff_is_what_the_plain_key_by_key_diff_was(old, new):
    assert deltas.diff(old, new) == plain_diff(old, new)
    assert as_json(deltas.apply(wire(old), wire(deltas.diff(old, new)))) == as_json(new)


@settings(max_examples=100, deadline=None, database=None)
@given(st.dictionaries(st.sampled_from("abcdef"), values, max_size=6), st.data())
def test_diff_of_a_capture_that_shares_values_is_the_plain_diff(old, data):
    """The service's case: new shares most of old's value objects."""
    new = {key: value for key, value in old.items() if data.draw(st.booleans())}
    new.update(data.draw(st.dictionaries(st.sampled_from("abcdefgh"), values, max_size=3)))
    assert deltas.diff(old, new) == plain_diff(old, new)


@settings(max_examples=150, deadline=None, database=None)
@given(st.dictionaries(st.sampled_from("abcdef"), values, max_size=6), st.data())
def test_diff_of_a_copy_updated_in_place_is_the_plain_diff(old, data):
    """The capture's case (traffic/services/kvstore.py): a copy of old, some
    values replaced, equal or not, keys added after old's, or one deleted
    and put back, last."""
    new = dict(old)
    for key, value in data.draw(st.lists(st.tuples(st.sampled_from("abcdefgh"), values),
                                         max_size=4)):
        new[key] = value
    if old and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(old)))
        new[key] = new.pop(key)
    assert deltas.diff(old, new) == plain_diff(old, new)
    assert as_json(deltas.apply(wire(old), wire(deltas.diff(old, new)))) == as_json(new)


_MISSING = object()


def plain_diff(old, new) -> dict:
    """deltas.diff a key at a time: the reference its result keeps.  Dicts
    are compared by recursion, not ==, which takes True for 1 inside them."""
    if old is new:
        return {}
    if type(old) is not dict or type(new) is not dict:
        return {} if type(old) is type(new) and old == new else {"=": new}
    put, inner = {}, {}
    for key, value in new.items():
        was = old.get(key, _MISSING)
        if type(was) is dict and type(value) is dict:
            if change := plain_diff(was, value):
                inner[key] = change
        elif type(was) is not type(value) or was != value:
            put[key] = value
    gone = [key for key in old if key not in new]
    return {name: part for name, part in (("set", put), ("del", gone), ("in", inner)) if part}


def test_a_nested_true_that_became_1_is_a_change():
    """Found by the property above: == takes {"b": True} for {"b": 1}, so a
    diff that compared sub-dicts by == sent no change and the rebuilt state
    kept True."""
    old, new = {"a": {"a": True, "b": True}}, {"a": {"a": True, "b": 1}}
    assert deltas.diff(old, new) == {"in": {"a": {"set": {"b": 1}}}}
    assert as_json(deltas.apply(wire(old), wire(deltas.diff(old, new)))) == as_json(new)
