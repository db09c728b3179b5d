"""Moves the scratch fields of a compiled BMv2 program out of its metadata,
where BMv2 would reset them for every packet.

p4c keeps every temporary it makes (an expression lifted out of a register
index or value, a condition), every control's locals and the user's
metadata in the "scalars" metadata header, and BMv2 sets every metadata
field to zero for every packet it takes: about 640 instructions a field in
the performance build.  Beaver's Epoch control has some 40 locals and leaves
p4c over 300 temporaries, so a packet that never enters Epoch paid more for
them than for the rest of its pipeline (bench/slb_instructions.py).

A field is scratch when no packet can read the zero the reset gave it:
along every path through the ingress pipeline, every condition and action
that reads it comes after an action that wrote it (or earlier in the same
action); and no table key (BMv2 matches a field of an invalid header as
zero), parser, deparser, calculation, checksum, field list or other
pipeline names it.  Whatever it held before (another packet's
value) is then never seen: it can live in a header that is never valid,
never parsed and never emitted, which BMv2 does not reset.

    moved = move_scratch_fields(program)   # the BMv2 JSON, as a dict; changed in place
"""
from __future__ import annotations

from typing import Any

SCALARS = "scalars"
HEADER = "scratch"
INGRESS = "ingress"
# The primitives this program uses, and which parameter each writes (the
# rest read).  Any other (a jump among them) ends what an action is known
# to have written, and every scalars field it names stays.
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


def _effects(action: dict) -> tuple[set[str], set[str]]:
    """(the fields action reads before writing them, the fields it surely
    writes)."""
    reads, written, known = set(), set(), True
    for primitive in action["primitives"]:
        parameters = primitive["parameters"]
        target = WRITTEN_PARAMETER.get(primitive["op"])
        if target is None and primitive["op"] not in READ_ONLY:
            known = False
            reads |= _scalar_fields(parameters, set())
            continue
        for index, parameter in enumerate(parameters):
            if index == target and parameter.get("type") == "field":
                continue
            reads |= _scalar_fields(parameter, set()) - written
        if known and target is not None and parameters[target].get("type") == "field":
            header, field = parameters[target]["value"]
            if header == SCALARS:
                written.add(field)
    return reads, written


def scratch_fields(program: dict) -> set[str]:
    """The scalars fields that are scratch (module docstring)."""
    ingress = next((p for p in program.get("pipelines", []) if p["name"] == INGRESS), None)
    actions = {a["id"]: a for a in program["actions"]}
    in_ingress = {i for t in (ingress or {}).get("tables", []) for i in t["action_ids"]}
    elsewhere = [value for key, value in program.items()
                 if key not in ("actions", "header_types", "headers", "pipelines")]
    elsewhere += [p for p in program.get("pipelines", []) if p is not ingress]
    elsewhere += [a for i, a in actions.items() if i not in in_ingress]
    unsafe = _scalar_fields(elsewhere, set())
    if ingress is None:
        return set()
    unsafe |= _scalar_fields(ingress.get("action_profiles", []), set())
    named = _scalar_fields([actions[i] for i in in_ingress], set())
    effects = {i: _effects(actions[i]) for i in in_ingress}
    nodes = {n["name"]: n for n in ingress["tables"] + ingress["conditionals"]}
    # Written on every path so far, for each node reached (p4c's control
    # flow is a DAG: a node is visited once all its predecessors were).
    written: dict[str, set[str]] = {}
    for name in _topological(nodes, ingress["init_table"]):
        node = nodes[name]
        before = written.pop(name, set()) if name != ingress["init_table"] else set()
        if "expression" in node:   # a condition
            reads = _scalar_fields(node["expression"], set())
            after = before
        else:
            unsafe |= _scalar_fields(node["key"], set())
            reads = set()
            for i in node["action_ids"]:
                reads |= effects[i][0] - before
            writes = [effects[i][1] for i in node["action_ids"]]
            after = before | (set.intersection(*writes) if writes else set())
        named |= reads
        unsafe |= reads - before
        for successor in _successors(node):
            written[successor] = after & written[successor] if successor in written else after
    return named - unsafe


def _topological(nodes: dict[str, dict], init: str | None) -> list[str]:
    """The nodes reachable from init, each after every node that leads to it."""
    order, seen = [], set()

    def visit(name: str):
        seen.add(name)
        for successor in _successors(nodes[name]):
            if successor not in seen:
                visit(successor)
        order.append(name)

    if init:
        visit(init)
    return order[::-1]


def _successors(node: dict) -> list[str]:
    """The nodes a condition or table may go to next (None: the pipeline's end)."""
    following = ([node["true_next"], node["false_next"]] if "expression" in node else
                 [node["base_default_next"], *node["next_tables"].values()])
    return [name for name in following if name]


def move_scratch_fields(program: dict) -> int:
    """Moves the scratch scalars fields into a header of their own; returns
    how many moved."""
    moving = scratch_fields(program)
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
    _rename([program["actions"], program["pipelines"]], moving)
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
