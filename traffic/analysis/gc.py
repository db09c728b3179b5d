"""The garbage-collection use case: what a collector deletes on one
snapshot, and which of it was still live.

An object's count in a snapshot is the sum of every function's count of it
(traffic/services/objects.py); the collector deletes every object created in the
snapshot whose count is not positive.  On a consistent cut every consume
in it comes with the create or share that made its reference, so the count
is the number of references anywhere, the out-group's included, and only
garbage goes.  Ground truth: an object was live at a snapshot if some
reference to it was consumed after the cuts (the functions' consumes at the
end, from their final states, outnumber those in the cut), or never was.
"""
from __future__ import annotations

from typing import Iterable, Mapping


def functions(states: Iterable) -> list[Mapping]:
    return [s for s in states if isinstance(s, dict) and s.get("service") == "gc"]


def counts(states: Iterable) -> dict[str, int]:
    """Every object created in the snapshot, with its count."""
    states = functions(states)
    out = {f"{s['function']}:{i}": 0 for s in states for i in range(1, s["created"] + 1)}
    for state in states:
        for ref, n in state["counts"].items():
            if ref in out:
                out[ref] += n
    return out


def collect(states: Iterable) -> set[str]:
    return {ref for ref, count in counts(states).items() if count <= 0}


def consumed(states: Iterable) -> dict[str, int]:
    """Consumes served per object, over the functions' states."""
    total = {}
    for state in functions(states):
        for ref, n in state["consumed"].items():
            total[ref] = total.get(ref, 0) + n
    return total


def live(objects: set[str], states: Iterable, final_states: Iterable) -> set[str]:
    """Of objects, those still referenced after the snapshot's cuts."""
    final_states = list(final_states)
    before, after = consumed(states), consumed(final_states)
    final_counts = counts(final_states)
    return {ref for ref in objects
            if after.get(ref, 0) > before.get(ref, 0) or final_counts.get(ref, 1) > 0}
