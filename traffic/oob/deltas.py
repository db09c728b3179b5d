"""What changed between two local states, so that a report carries only
that (traffic/oob/protocol.py's "base"): the controller rebuilds the full state
from the one it holds, and stores, judges and restores full states only.

    changes = diff(old, new)         # JSON, {} when nothing changed
    apply(old, changes) == new       # a new value; old is left as it was

States are JSON values.  Dicts are compared key by key, recursively; any
other value is replaced whole when it differs (==, and its type at that
level: a list is compared by ==, in which 1, 1.0 and True are alike, so a
service's state never holds one where another was without its own version
changing, as a register's does).  A change is {"=": value} (replaced) or,
for a dict, {"set": {key: value}, "del": [key], "in": {key: change}}, each
part present only when not empty.

A process's capture may make a dict as a `Derived` of the one before: that
one's keys and values (the same objects), some keys set.  Diffed from the
one it was derived from (or a few derivations back), only the keys set are
looked at, not every key (a store of many keys, a few written a snapshot).
"""
from __future__ import annotations

import weakref
from itertools import chain, compress, repeat
from operator import is_not
from typing import Any


_MISSING = object()
_CHAIN = 8   # derivations followed back from new to old at most


class Derived(dict):
    """A dict made by `derive`, never changed after: it holds its parent's
    keys and values and those set.  The parent is held weakly, so that a
    chain of captures does not keep every older one alive.  A copy (copy,
    deepcopy, pickle) is a plain dict."""
    # No __init__: made at dict's own speed; a root (Derived()) has neither.
    __slots__ = ("parent", "set_keys", "__weakref__")

    def __reduce__(self):
        return dict, (dict(self),)


def derive(parent: Derived, updates: dict) -> Derived:
    """parent's keys and values, updates set over them: diff(parent, it)
    looks at updates' keys only.  parent must never change after."""
    child = Derived(parent)
    child.update(updates)
    if type(parent) is Derived:
        child.parent, child.set_keys = weakref.ref(parent), tuple(updates)
    return child


_DICTS = frozenset((dict, Derived))


def _set_since(old: dict, new: dict) -> tuple | dict | None:
    """The keys set on the way from old to new, if new was derived from
    old within _CHAIN steps (every other key holds old's value, none is
    gone), oldest first as new holds them; else None."""
    found = []
    for _ in range(_CHAIN):
        parent = getattr(new, "parent", None) if type(new) is Derived else None   # a root: none
        if parent is None:
            return None
        found.append(new.set_keys)
        new = parent()
        if new is old:
            return found[0] if len(found) == 1 else dict.fromkeys(chain.from_iterable(reversed(found)))
    return None


def diff(old: Any, new: Any) -> dict:
    if old is new:
        return {}
    if type(old) not in _DICTS or type(new) not in _DICTS:
        return {} if type(old) is type(new) and old == new else {"=": new}
    put, inner, kept = {}, {}, len(new)
    # A capture shares what did not change with the one before
    # (traffic/services/kvstore.py), so only the keys whose value is another
    # object are looked at here, found at C speed, in new's order; of one
    # derived from old, only the keys set since.
    looked = None
    if type(new) is Derived:   # (a plain dict has no attributes: not even looked for)
        parent = getattr(new, "parent", None)
        # derived from old: the usual case (a capture from the one before) looked up inline
        looked = new.set_keys if parent is not None and parent() is old else _set_since(old, new)
    if looked is None:
        looked = compress(new, map(is_not, map(old.get, new, repeat(_MISSING)), new.values()))
    for key in looked:
        value, was = new[key], old.get(key, _MISSING)
        if was is value:   # set again to the same object
            continue
        if was is _MISSING:
            kept -= 1
            put[key] = value
        elif type(was) in _DICTS and type(value) in _DICTS:
            if change := diff(was, value):   # not ==, which takes True for 1 inside
                inner[key] = change
        elif type(was) is not type(value) or was != value:
            put[key] = value
    # old holds a key new does not only if fewer of new's were in old than old holds
    changes = {"set": put} if put else {}
    if kept != len(old):
        changes["del"] = [key for key in old if key not in new]
    if inner:
        changes["in"] = inner
    return changes


def apply(old: Any, change: dict) -> Any:
    if not change:
        return old
    if "=" in change:
        return change["="]
    if type(old) not in _DICTS:
        raise ValueError(f"a change of keys applied to a {type(old).__name__}")
    new = dict(old)   # unchanged parts are shared with old, never copied
    for key in change.get("del", ()):
        if new.pop(key, _MISSING) is _MISSING:
            raise ValueError(f"{key!r} deleted, which the base does not hold")
    new.update(change.get("set", {}))
    for key, inner in change.get("in", {}).items():
        if key not in new:
            raise ValueError(f"a change inside {key!r}, which the base does not hold")
        new[key] = apply(new[key], inner)
    return new
