"""Merges the masks p4c stacks on one value in a compiled BMv2 program.

p4c lowers every slice and cast to a shift and a mask, and a slice of a
slice, or a cast of one, to a mask of a mask: `((st >> 80) & M113) & M32`.
BMv2 evaluates each mask as one operation on a multiprecision number, and
the mark (epoch.p4), on every VIP packet's path, spent 14 of its 66
operations so.  `(e & A) & B` is `e & (A & B)` whatever e is, so the merged
program computes every value it did, in fewer operations.

    merged = merge_masks(program)   # the BMv2 JSON, as a dict; changed in place
"""
from __future__ import annotations

from typing import Any


def _constant(value: Any) -> int | None:
    """The number a "hexstr" operand holds, else None."""
    if isinstance(value, dict) and value.get("type") == "hexstr":
        return int(value["value"], 16)
    return None


def _merged(node: dict) -> tuple[dict, int]:
    """node, an `&` by a constant, with the `&`s by constants right under it
    merged into it; and how many were."""
    merged = 0
    while (mask := _constant(node["right"])) is not None:
        left = node["left"]
        inner = left.get("value") if left.get("type") == "expression" else None
        if not (isinstance(inner, dict) and inner.get("op") == "&"
                and (under := _constant(inner["right"])) is not None):
            break
        node = {"op": "&", "left": inner["left"],
                "right": {"type": "hexstr", "value": hex(mask & under)}}
        merged += 1
    return node, merged


def merge_masks(value: Any) -> int:
    """Merges, in place, every `(e & A) & B` of constants A and B in value
    (a BMv2 JSON program, or any part of it) into `e & (A & B)`, innermost
    first; returns how many masks went."""
    merged = 0
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        merged += merge_masks(child)
    if isinstance(value, dict) and value.get("type") == "expression" \
            and isinstance(inner := value.get("value"), dict) and inner.get("op") == "&" \
            and isinstance(inner.get("left"), dict):
        value["value"], count = _merged(inner)
        merged += count
    return merged
