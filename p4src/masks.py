"""Removes the masks that change nothing from a compiled BMv2 program.

p4c lowers every slice and cast to a shift and a mask, and a slice of a
slice, or a cast of one, to a mask of a mask: `((st >> 80) & M113) & M32`;
a one-bit slice of the top of a field, `st[112:112]`, to `(st >> 112) & 1`,
whose mask keeps every bit the shift leaves.  BMv2 evaluates each mask as
one operation on a multiprecision number, and the mark (epoch.p4), on
every VIP packet's path, spent 20 of its 66 operations so.  Both go, and
the program computes every value it did:
  - `(e & A) & B` is `e & (A & B)`, whatever e is;
  - `e & M` is e when M has every bit e can have: of an unsigned field
    its width (BMv2 keeps a field within it), of a constant its own, and
    of `>>`, `<<` by a constant, `&`, `|`, `+` and `?:` what their operands
    give (`(st >> 80) << 32` of a bit<113> has 65); e is never negative
    then (a `~` or a `-` may be: no mask over one goes).

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
    """How many bits value can have at most, when it is never negative
    (BMv2 computes an expression over unbounded integers, so a mask's bits
    come only from fields, constants and the operations below); else None."""
    if not isinstance(value, dict):
        return None
    if value.get("type") == "field":
        return widths.get(tuple(value["value"]))
    if (constant := _constant(value)) is not None:
        return constant.bit_length() if constant >= 0 else None
    node = value.get("value") if value.get("type") == "expression" else None
    if not isinstance(node, dict) or "op" not in node:
        return _bits(node, widths)   # a parameter's wrapper, or no expression
    op, left, right = node["op"], _bits(node.get("left"), widths), _bits(node.get("right"), widths)
    shift = _constant(node.get("right"))
    if op in (">>", "<<") and left is not None and shift is not None and shift >= 0:
        return max(left - shift, 0) if op == ">>" else left + shift
    if op == "&" and (left is not None or right is not None):   # at most either's bits
        return min(bits for bits in (left, right) if bits is not None)
    if left is None or right is None:
        return None
    if op in ("|", "?"):   # "?": either branch
        return max(left, right)
    if op == "+":
        return max(left, right) + 1
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
        # the mask keeps every bit value can have: its lowest `bits` are ones
        if mask is not None and bits is not None and bits < (mask ^ (mask + 1)).bit_length():
            kept = node["left"]   # this expression becomes what the mask was on
            value.clear()
            value.update(kept)
            removed += 1
        else:
            value["value"] = node
    return removed
