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
"""
from __future__ import annotations

from itertools import compress, repeat
from operator import is_not
from typing import Any


_MISSING = object()


def diff(old: Any, new: Any) -> dict:
    if old is new:
        return {}
    if type(old) is not dict or type(new) is not dict:
        return {} if type(old) is type(new) and old == new else {"=": new}
    put, inner, kept = {}, {}, len(new)
    # A capture shares what did not change with the one before
    # (traffic/services/kvstore.py), so only the keys whose value is another
    # object are looked at here, found at C speed, in new's order.
    for key in compress(new, map(is_not, map(old.get, new, repeat(_MISSING)), new.values())):
        value, was = new[key], old.get(key, _MISSING)
        if was is _MISSING:
            kept -= 1
            put[key] = value
        elif type(was) is dict and type(value) is dict:
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
    if type(old) is not dict:
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
