"""Removes the masks that change nothing from a compiled BMv2 program.

p4c lowers every slice and cast to a shift and a mask, and a slice of a
slice, or a cast of one, to a mask of a mask: `((st >> 80) & M113) & M32`;
a one-bit slice of the top of a field, `st[112:112]`, to `(st >> 112) & 1`,
whose mask keeps every bit the shift leaves.  BMv2 evaluates each mask as
one operation on a multiprecision number, and the mark (epoch.p4), on
every VIP packet's path, spent 20 of its 66 operations so.  Both go, and
the program computes every value it did:
  - `(e & A) & B` is `e & (A & B)`, whatever e is;
  - `f & M` and `(f >> k) & M`, of an unsigned field f of W bits (BMv2
    keeps a field within its width) and a constant k, are f and f >> k
    when M has every bit below W (or W - k).

    removed = simplify_masks(program)   # the BMv2 JSON, as a dict; changed in place
"""
from __future__ import annotations

from typing import Any

Widths = dict[tuple[str, str], int]   # (header, field) -> bits, the unsigned fields only


def _constant(value: Any) -> int | None:
    """The number a "hexstr" operand holds, else None."""
    if isinstance(value, dict) and value.get("type") == "hexstr":
        return int(value["value"], 16)
    return None


def field_widths(program: dict) -> Widths:
    """The unsigned fields of fixed width (a varbit's width is "*")."""
    types = {t["name"]: t["fields"] for t in program.get("header_types", ())}
    return {(header["name"], name): width
            for header in program.get("headers", ())
            for name, width, *signed in types.get(header["header_type"], ())
            if isinstance(width, int) and not (signed and signed[0])}


def _bits(value: Any, widths: Widths) -> int | None:
    """How many bits value can have at most, for an unsigned field or one
    shifted right by a constant; else None."""
    if not isinstance(value, dict):
        return None
    if value.get("type") == "field":
        return widths.get(tuple(value["value"]))
    inner = value.get("value") if value.get("type") == "expression" else None
    if isinstance(inner, dict) and inner.get("op") == ">>" \
            and (shift := _constant(inner["right"])) is not None \
            and (bits := _bits(inner["left"], widths)) is not None:
        return max(bits - shift, 0)
    return None


def _merged(node: dict) -> tuple[dict, int]:
    """node, an `&`, with the `&`s by constants right under it merged into
    it when it is one by a constant; and how many were."""
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


def simplify_masks(value: Any, widths: Widths | None = None) -> int:
    """Removes, in place, the masks that change nothing in value (a BMv2
    JSON program, or any part of it, with the program's field_widths),
    innermost first; returns how many went."""
    if widths is None:
        widths = field_widths(value) if isinstance(value, dict) else {}
    removed = 0
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    for child in children:
        removed += simplify_masks(child, widths)
    if isinstance(value, dict) and value.get("type") == "expression" \
            and isinstance(inner := value.get("value"), dict) and inner.get("op") == "&" \
            and isinstance(inner.get("left"), dict):
        node, merged = _merged(inner)
        removed += merged
        mask, bits = _constant(node["right"]), _bits(node["left"], widths)
        if mask is not None and bits is not None and mask | ((1 << bits) - 1) == mask:
            kept = node["left"]   # this expression becomes what the mask was on
            value.clear()
            value.update(kept)
            removed += 1
        else:
            value["value"] = node
    return removed
