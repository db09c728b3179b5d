"""p4src/action_locals.py: which fields of a compiled program leave BMv2's
per-packet metadata reset, and that moving them changes no action's result."""
from __future__ import annotations

import copy
import json

from hypothesis import given, settings, strategies as st

from beaver.p4src import BMV2_JSON
from beaver.p4src.action_locals import HEADER, action_locals, move_action_locals


def field(name: str, header: str = "scalars") -> dict:
    return {"type": "field", "value": [header, name]}


def const(value: int) -> dict:
    return {"type": "hexstr", "value": hex(value)}


def plus(left: dict, right: dict) -> dict:
    return {"type": "expression", "value": {"type": "expression", "value": {
        "op": "+", "left": left, "right": right}}}


def assign(target: str, source: dict) -> dict:
    return {"op": "assign", "parameters": [field(target), source]}


def program(actions: list[list[dict]], elsewhere: dict | None = None) -> dict:
    names = sorted({f for a in actions for p in a for f in _names(p)})
    return {
        "header_types": [{"name": "scalars_0", "id": 0, "fields": [[n, 32, False] for n in names]},
                         {"name": "standard_metadata", "id": 1, "fields": [["egress_spec", 9, False]]}],
        "headers": [{"name": "scalars", "id": 0, "header_type": "scalars_0", "metadata": True},
                    {"name": "standard_metadata", "id": 1, "header_type": "standard_metadata",
                     "metadata": True}],
        "actions": [{"name": f"a{i}", "id": i, "runtime_data": [], "primitives": a}
                    for i, a in enumerate(actions)],
        "pipelines": [], **(elsewhere or {})}


def _names(value) -> list[str]:
    text = json.dumps(value)
    return [part.split('"')[0] for part in text.split('["scalars", "')[1:]]


def test_a_temporary_written_then_read_in_one_action_moves():
    p = program([[assign("tmp", plus(field("x"), const(1))),
                  {"op": "register_write", "parameters": [
                      {"type": "register_array", "value": "r"}, const(0), field("tmp")]}]])
    assert move_action_locals(p) == 1
    moved = next(t for t in p["header_types"] if t["name"] == f"{HEADER}_t")
    assert moved["fields"] == [["tmp", 32, False]]   # 32 bits: no padding
    assert [f[0] for f in p["header_types"][0]["fields"]] == ["x"]
    assert p["actions"][0]["primitives"][1]["parameters"][2] == field("tmp", HEADER)
    assert p["actions"][0]["primitives"][0]["parameters"][1] == plus(field("x"), const(1))
    header = next(h for h in p["headers"] if h["name"] == HEADER)
    assert header["metadata"] is False and header["id"] == 2


def test_a_field_read_before_any_write_in_one_action_stays():
    # written in a0, read first in a1: its value passes from one action to the next
    p = program([[assign("carry", const(5))],
                 [assign("out", field("carry")), assign("carry", const(0))]])
    assert action_locals(p) == {"out"}


def test_a_register_read_writes_its_target():
    p = program([[{"op": "register_read", "parameters": [
                      field("st"), {"type": "register_array", "value": "r"}, const(0)]},
                  assign("out", plus(field("st"), const(1)))]])
    assert action_locals(p) == {"st", "out"}


def test_fields_read_outside_actions_stay():
    condition = {"name": "node_1", "expression": {"type": "expression", "value": {
        "op": "==", "left": field("cond"), "right": const(1)}}}
    calculation = {"name": "calc", "input": [field("hashed")]}
    p = program([[assign("cond", const(1)), assign("hashed", const(2)), assign("free", const(3))]],
                {"pipelines": [{"name": "ingress", "conditionals": [condition]}],
                 "calculations": [calculation]})
    assert action_locals(p) == {"free"}


def test_a_field_an_unknown_primitive_names_stays():
    p = program([[assign("a", const(1)), {"op": "clone_ingress_pkt_to_egress",
                                          "parameters": [field("a")]}]])
    assert action_locals(p) == set()
    assert move_action_locals(p) == 0


def test_an_odd_width_is_padded_to_whole_bytes():
    p = program([[assign("flag", const(1)), assign("y", field("flag")),
                  assign("kept", field("kept"))]])
    p["header_types"][0]["fields"] = [["flag", 1, False], ["y", 32, False], ["kept", 3, False],
                                      ["_padding_0", 5, False]]
    move_action_locals(p)
    moved, scalars = (next(t for t in p["header_types"] if t["name"] == name)
                      for name in (f"{HEADER}_t", "scalars_0"))
    # BMv2 asserts whole bytes of every header, metadata too
    assert moved["fields"] == [["flag", 1, False], ["y", 32, False], ["_padding", 7, False]]
    assert scalars["fields"] == [["kept", 3, False], ["_padding", 5, False]]


def test_the_committed_build_keeps_few_fields_in_metadata():
    built = json.loads(BMV2_JSON.read_text())
    assert action_locals(built) == set()      # the compiler moved every one already
    types = {t["name"]: t for t in built["header_types"]}
    metadata = sum(len(types[h["header_type"]]["fields"]) for h in built["headers"]
                   if h["metadata"])
    local = types[f"{HEADER}_t"]["fields"]
    assert metadata < 100 < len(local)        # p4c leaves 396 in metadata (1.2.4.8)


# Moving is sound when no action can tell: run every action with the moved
# fields holding anything (another packet's values) and with them zeroed;
# what the actions leave in the fields that stay, and write to registers,
# must be the same.
FIELDS = ["f0", "f1", "f2", "f3"]
operand = st.one_of(st.sampled_from(FIELDS).map(field), st.integers(0, 9).map(const))
primitive = st.one_of(
    st.tuples(st.sampled_from(FIELDS), operand, operand).map(
        lambda t: assign(t[0], plus(t[1], t[2]))),
    st.tuples(st.integers(0, 3), operand).map(lambda t: {"op": "register_write", "parameters": [
        {"type": "register_array", "value": "r"}, const(t[0]), t[1]]}))


def run(p: dict, state: dict[tuple[str, str], int]) -> tuple[dict, dict]:
    registers = {}
    for action in p["actions"]:
        for prim in action["primitives"]:
            args = prim["parameters"]
            if prim["op"] == "assign":
                state[tuple(args[0]["value"])] = value(args[1], state)
            else:
                registers[int(args[1]["value"], 16)] = value(args[2], state)
    return state, registers


def value(operand: dict, state: dict) -> int:
    if operand["type"] == "hexstr":
        return int(operand["value"], 16)
    if operand["type"] == "field":
        return state.get(tuple(operand["value"]), 0)
    inner = operand["value"]["value"]
    return value(inner["left"], state) + value(inner["right"], state)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(primitive, max_size=6), min_size=1, max_size=4),
       st.lists(st.integers(1, 1000), min_size=4, max_size=4))
def test_moved_fields_never_carry_a_value_an_action_reads(actions, garbage):
    p = program(actions)
    p["header_types"][0]["fields"] = [[name, 32, False] for name in FIELDS]
    moved = copy.deepcopy(p)
    move_action_locals(moved)
    zeroed, registers = run(p, {})
    stale = {(HEADER, name): g for name, g in zip(FIELDS, garbage)}
    dirty, dirty_registers = run(moved, stale)
    assert dirty_registers == registers
    staying = [("scalars", f[0]) for f in moved["header_types"][0]["fields"]]
    assert [dirty.get(k, 0) for k in staying] == [zeroed.get(k, 0) for k in staying]
