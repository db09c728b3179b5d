"""Moves the action-local fields of a compiled BMv2 program out of its
metadata, where BMv2 would reset them for every packet.

p4c keeps every temporary it makes (an expression lifted out of a register
index or value, a condition) and every local it could not remove in the
"scalars" metadata header, and BMv2 sets every metadata field to zero for
every packet it takes: about 640 instructions a field in the performance
build.  Beaver's Epoch control, inlined at each of its call sites, leaves
over 300 such fields, so a packet that never enters Epoch paid more for them
than for the rest of its pipeline (bench/slb_instructions.py).

A field is action-local when no parser, deparser, table key, condition,
calculation or checksum reads it, and every action that reads it wrote it
first, earlier in the same action.  Its value then never passes from one
action to another, so whatever it held before (another packet's value) is
never seen: it can live in a header that is never valid, never parsed and
never emitted, which BMv2 does not reset.

    moved = move_action_locals(program)   # the BMv2 JSON, as a dict; changed in place
"""
from __future__ import annotations

from typing import Any

SCALARS = "scalars"
HEADER = "action_locals"
# The primitives this program uses, and which parameter each writes (the rest read).
WRITTEN_PARAMETER = {"assign": 0, "register_read": 0, "modify_field_with_hash_based_offset": 0}
READ_ONLY = {"register_write", "count", "mark_to_drop", "add_header", "remove_header",
             "assign_header"}


def _scalar_fields(value: Any, found: set[str]) -> set[str]:
    """Every scalars field that value names, as a field reference or a
    [header, field] pair (calculations, field lists)."""
    if isinstance(value, dict):
        if value.get("type") == "field" and value.get("value", [None])[0] == SCALARS:
            found.add(value["value"][1])
        for inner in value.values():
            _scalar_fields(inner, found)
    elif isinstance(value, list):
        if len(value) == 2 and value[0] == SCALARS and isinstance(value[1], str):
            found.add(value[1])
        for inner in value:
            _scalar_fields(inner, found)
    return found


def action_locals(program: dict) -> set[str]:
    """The scalars fields that are action-local (module docstring)."""
    elsewhere = {key: value for key, value in program.items()
                 if key not in ("actions", "header_types", "headers")}
    named, unsafe = set(), _scalar_fields(elsewhere, set())
    for action in program["actions"]:
        written: set[str] = set()
        for primitive in action["primitives"]:
            parameters = primitive["parameters"]
            target = WRITTEN_PARAMETER.get(primitive["op"])
            if target is None and primitive["op"] not in READ_ONLY:
                unknown = _scalar_fields(parameters, set())   # kept in metadata
                named |= unknown
                unsafe |= unknown
                continue
            for index, parameter in enumerate(parameters):
                fields = _scalar_fields(parameter, set())
                named |= fields
                if index == target and parameter.get("type") == "field":
                    continue
                unsafe |= fields - written
            if target is not None and parameters[target].get("type") == "field":
                header, field = parameters[target]["value"]
                if header == SCALARS:
                    written.add(field)
    return named - unsafe


def move_action_locals(program: dict) -> int:
    """Moves the action-local scalars fields into a header of their own;
    returns how many moved."""
    moving = action_locals(program)
    if not moving:
        return 0
    scalars = next(h for h in program["headers"] if h["name"] == SCALARS)
    fields = next(t for t in program["header_types"]
                  if t["name"] == scalars["header_type"])["fields"]
    moved = [f for f in fields if f[0] in moving]
    fields[:] = _whole_bytes([f for f in fields
                              if f[0] not in moving and not f[0].startswith("_padding")])
    program["header_types"].append({
        "name": f"{HEADER}_t", "id": 1 + max(t["id"] for t in program["header_types"]),
        "fields": _whole_bytes(moved)})
    program["headers"].append({
        "name": HEADER, "id": 1 + max(h["id"] for h in program["headers"]),
        "header_type": f"{HEADER}_t", "metadata": False, "pi_omit": True})
    for action in program["actions"]:
        _rename(action["primitives"], moving)
    return len(moving)


def _rename(value: Any, moving: set[str]):
    if isinstance(value, dict):
        if value.get("type") == "field" and value.get("value", [None])[0] == SCALARS \
                and value["value"][1] in moving:
            value["value"] = [HEADER, value["value"][1]]
        for inner in value.values():
            _rename(inner, moving)
    elif isinstance(value, list):
        for inner in value:
            _rename(inner, moving)


def _whole_bytes(fields: list[list]) -> list[list]:
    """fields, padded to whole bytes: BMv2 asserts it of every header."""
    bits = sum(f[1] for f in fields)
    return fields + [["_padding", 8 - bits % 8, False]] if bits % 8 else fields
