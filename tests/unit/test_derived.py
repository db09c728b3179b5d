"""Dicts derived from the one before (traffic/oob/deltas.py's Derived):
diffed from an ancestor, only the keys set since are looked at, and the
changes are the ones the whole walk finds."""
import copy
import gc
import json
import pickle

from hypothesis import given, settings, strategies as st

from beaver.traffic.oob import deltas
from beaver.traffic.oob.deltas import Derived, derive

keys = st.sampled_from([f"k{i}" for i in range(12)])
values = st.one_of(st.integers(-3, 3), st.booleans(), st.lists(st.integers(0, 2), max_size=2),
                   st.dictionaries(st.sampled_from("ab"), st.integers(0, 2), max_size=2))
# Each step sets some keys: to a new value, or to the very object already there.
steps = st.lists(st.lists(st.tuples(keys, values, st.booleans()), max_size=4), min_size=1,
                 max_size=12)


def plain(value):
    return json.loads(json.dumps(value))


def chain_of(steps_: list) -> list[Derived]:
    states = [Derived()]
    for step in steps_:
        updates = {}
        for key, value, same_object in step:
            updates[key] = states[-1][key] if same_object and key in states[-1] else value
        states.append(derive(states[-1], updates))
    return states


@settings(max_examples=200, deadline=None)
@given(steps, st.data())
def test_a_derived_dict_diffs_as_the_whole_walk_does(steps_, data):
    states = chain_of(steps_)
    old = data.draw(st.sampled_from(states))
    new = data.draw(st.sampled_from(states))
    changes = deltas.diff(old, new)
    assert changes == deltas.diff(plain(old), plain(new))
    assert deltas.apply(plain(old), plain(changes)) == plain(new)


@settings(max_examples=100, deadline=None)
@given(steps, steps)
def test_a_dict_derived_from_another_chain_is_walked_whole(ours, theirs):
    """A state of another chain (the same keys, other objects) is no
    ancestor: every key is looked at."""
    old, new = chain_of(theirs)[-1], chain_of(ours)[-1]
    assert deltas.diff(old, new) == deltas.diff(plain(old), plain(new))


def test_only_the_keys_set_are_looked_at_while_the_parent_lives():
    parent = derive(Derived(), {f"k{i}": [i] for i in range(100)})
    child = derive(parent, {"k5": [-5]})
    dict.__setitem__(child, "k6", [-6])   # what a capture must never do: goes unseen
    assert deltas.diff(parent, child) == {"set": {"k5": [-5]}}
    assert deltas.diff(dict(parent), child) == {"set": {"k5": [-5], "k6": [-6]}}


def test_a_parent_gone_leaves_the_whole_walk():
    parent = derive(Derived(), {"a": 1, "b": 2})
    child = derive(parent, {"a": 3})
    other = dict(parent)
    del parent
    gc.collect()
    assert child.parent() is None
    assert deltas.diff(other, child) == {"set": {"a": 3}}


def test_a_copy_is_a_plain_dict():
    child = derive(derive(Derived(), {"a": [1]}), {"b": 2})
    for made in (copy.copy(child), copy.deepcopy(child), pickle.loads(pickle.dumps(child))):
        assert type(made) is dict and made == {"a": [1], "b": 2}
    assert json.dumps(child) == '{"a": [1], "b": 2}'


def test_a_chain_longer_than_followed_is_walked_whole():
    states = [Derived()]
    for i in range(20):
        states.append(derive(states[-1], {f"k{i}": i}))
    assert deltas.diff(states[0], states[-1]) == {"set": {f"k{i}": i for i in range(20)}}
    assert deltas.diff(states[3], states[6]) == {"set": {"k3": 3, "k4": 4, "k5": 5}}
