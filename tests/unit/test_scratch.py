"""p4src/scratch.py: which fields of a compiled program leave BMv2's
per-packet metadata reset, and that moving them changes no packet's result."""
from __future__ import annotations

import copy
import json

from hypothesis import given, settings, strategies as st

from beaver.p4src import BMV2_JSON, PLAIN_BMV2_JSON
from beaver.p4src.scratch import HEADER, move_scratch_fields, scratch_fields


def field(name: str, header: str = "scalars") -> dict:
    return {"type": "field", "value": [header, name]}


def const(value: int) -> dict:
    return {"type": "hexstr", "value": hex(value)}


def plus(left: dict, right: dict) -> dict:
    return {"type": "expression", "value": {"type": "expression", "value": {
        "op": "+", "left": left, "right": right}}}


def equals(left: dict, right: dict) -> dict:
    return {"type": "expression", "value": {"op": "==", "left": left, "right": right}}


def assign(target: str, source: dict) -> dict:
    return {"op": "assign", "parameters": [field(target), source]}


def table(name: str, action_ids: list[int], following: str | None,
          key: list[str] = ()) -> dict:
    return {"name": name, "key": [{"match_type": "exact", "name": k, "target": ["scalars", k],
                                   "mask": None} for k in key],
            "action_ids": action_ids, "base_default_next": following,
            "next_tables": {f"a{i}": following for i in action_ids}}


def condition(name: str, expression: dict, true_next: str | None,
              false_next: str | None) -> dict:
    return {"name": name, "expression": expression,
            "true_next": true_next, "false_next": false_next}


def chain(count: int) -> list[dict]:
    """Each action applied in turn, as p4c applies a statement outside tables."""
    return [table(f"t{i}", [i], f"t{i + 1}" if i + 1 < count else None) for i in range(count)]


def program(actions: list[list[dict]], nodes: list[dict] | None = None,
            elsewhere: dict | None = None) -> dict:
    nodes = chain(len(actions)) if nodes is None else nodes
    names = sorted({f for a in actions for p in a for f in _names(p)} |
                   {f for n in nodes for f in _names(n)})
    return {
        "header_types": [{"name": "scalars_0", "id": 0, "fields": [[n, 32, False] for n in names]},
                         {"name": "standard_metadata", "id": 1, "fields": [["egress_spec", 9, False]]}],
        "headers": [{"name": "scalars", "id": 0, "header_type": "scalars_0", "metadata": True},
                    {"name": "standard_metadata", "id": 1, "header_type": "standard_metadata",
                     "metadata": True}],
        "actions": [{"name": f"a{i}", "id": i, "runtime_data": [], "primitives": a}
                    for i, a in enumerate(actions)],
        "pipelines": [{"name": "ingress", "init_table": nodes[0]["name"] if nodes else None,
                       "tables": [n for n in nodes if "key" in n], "action_profiles": [],
                       "conditionals": [n for n in nodes if "expression" in n]}],
        **(elsewhere or {})}


def _names(value) -> list[str]:
    text = json.dumps(value)
    return [part.split('"')[0] for part in text.split('["scalars", "')[1:]]


def test_a_temporary_written_then_read_in_one_action_moves():
    p = program([[assign("tmp", plus(field("x"), const(1))),
                  {"op": "register_write", "parameters": [
                      {"type": "register_array", "value": "r"}, const(0), field("tmp")]}]])
    assert move_scratch_fields(p) == 1
    moved = next(t for t in p["header_types"] if t["name"] == f"{HEADER}_t")
    assert moved["fields"] == [["tmp", 32, False]]   # 32 bits: no padding
    assert [f[0] for f in p["header_types"][0]["fields"]] == ["x"]
    assert p["actions"][0]["primitives"][1]["parameters"][2] == field("tmp", HEADER)
    assert p["actions"][0]["primitives"][0]["parameters"][1] == plus(field("x"), const(1))
    header = next(h for h in p["headers"] if h["name"] == HEADER)
    assert header["metadata"] is False and header["id"] == 2


def test_a_field_read_before_any_write_stays():
    # read first by a1, written only by a2 after it: the reset's zero is read
    p = program([[assign("carry", const(5))],
                 [assign("out", field("late")), assign("late", const(0))],
                 [assign("late", const(1))]])
    assert scratch_fields(p) == {"carry", "out"}


def test_a_field_an_earlier_action_wrote_moves():
    # a local of a control: one action sets it, later ones and a condition read it
    p = program([[assign("local", const(5))], [assign("out", field("local"))],
                 [assign("kept", field("local"))]],
                [table("t0", [0], "c"), condition("c", equals(field("local"), const(5)), "t1", "t2"),
                 table("t1", [1], None), table("t2", [2], None)])
    assert scratch_fields(p) == {"local", "out", "kept"}
    move_scratch_fields(p)
    assert p["pipelines"][0]["conditionals"][0]["expression"]["value"]["left"] == \
        field("local", HEADER)


def test_a_field_written_on_one_branch_only_stays():
    p = program([[assign("maybe", const(1))], [assign("out", field("maybe"))]],
                [condition("c", equals(field("in"), const(1)), "t0", "t1"),
                 table("t0", [0], "t1"), table("t1", [1], None)])
    assert scratch_fields(p) == {"out"}


def test_a_table_key_stays_even_after_a_write():
    # BMv2 matches a field of an invalid header (the one moved fields live
    # in) as zero
    p = program([[assign("k", const(1)), assign("free", const(1))], []],
                [table("t0", [0], "t1"), table("t1", [1], None, key=["k"])])
    assert scratch_fields(p) == {"free"}


def test_a_table_writes_only_what_each_of_its_actions_writes():
    # either action may run: only what both write is written after it
    p = program([[assign("both", const(1)), assign("one", const(1))],
                 [assign("both", const(2))], [assign("out", plus(field("both"), field("one")))]],
                [table("t", [0, 1], "u"), table("u", [2], None)])
    assert scratch_fields(p) == {"both", "out"}


def test_fields_another_pipeline_or_a_calculation_names_stay():
    egress = {"name": "egress", "init_table": "e", "action_profiles": [], "conditionals": [],
              "tables": [table("e", [1], None)]}
    calculation = {"name": "calc", "input": [field("hashed")]}
    p = program([[assign("egressed", const(1)), assign("hashed", const(2)), assign("free", const(3))],
                 [assign("x", field("egressed"))]],
                nodes=chain(1), elsewhere={"calculations": [calculation]})
    p["pipelines"].append(egress)
    assert scratch_fields(p) == {"free"}


def test_a_field_an_unknown_primitive_names_stays_and_ends_what_is_known_written():
    p = program([[{"op": "_jump_if_zero", "parameters": [field("a"), const(3)]},
                  assign("b", const(1)), assign("c", field("b"))]])
    # the jump may skip the write of b: c reads b's reset value
    assert scratch_fields(p) == {"c"}


def test_an_odd_width_is_padded_to_whole_bytes():
    p = program([[assign("flag", const(1)), assign("y", field("flag")),
                  assign("kept", field("kept"))]])
    p["header_types"][0]["fields"] = [["flag", 1, False], ["y", 32, False], ["kept", 3, False],
                                      ["_padding_0", 5, False]]
    move_scratch_fields(p)
    moved, scalars = (next(t for t in p["header_types"] if t["name"] == name)
                      for name in (f"{HEADER}_t", "scalars_0"))
    # BMv2 asserts whole bytes of every header, metadata too
    assert moved["fields"] == [["flag", 1, False], ["y", 32, False], ["_padding", 7, False]]
    assert scalars["fields"] == [["kept", 3, False], ["_padding", 5, False]]


def metadata_and_headers(path) -> tuple[set[str], set[str]]:
    built = json.loads(path.read_text())
    assert scratch_fields(built) == set()      # the compiler moved every one already
    types = {t["name"]: t for t in built["header_types"]}
    metadata = {f[0] for h in built["headers"] if h["metadata"]
                for f in types[h["header_type"]]["fields"] if not f[0].startswith("_padding")}
    return metadata, {h["name"] for h in built["headers"] if not h["metadata"]}


def test_beaver_resets_one_field_more_than_the_plain_slb_a_packet():
    # p4c leaves 396 metadata fields in Beaver's program (1.2.4.8), and 16
    # header copies of READ_RECORDS' record
    metadata, headers = metadata_and_headers(BMV2_JSON)
    plain_metadata, plain_headers = metadata_and_headers(PLAIN_BMV2_JSON)
    # whether Epoch runs; p4c numbers its temporaries apart in each build
    assert metadata - plain_metadata - {f for f in metadata if f.startswith("tmp")} == \
        {"metadata_t.epoch_op"}
    assert len(metadata) == len(plain_metadata) + 1
    assert headers == plain_headers


# Moving is sound when no packet can tell: run the pipeline with the moved
# fields holding anything (another packet's values) and with them zeroed;
# the path taken, what it leaves in the fields that stay, and what it writes
# to registers must be the same.
FIELDS = ["f0", "f1", "f2", "f3"]
operand = st.one_of(st.sampled_from(FIELDS).map(field), st.integers(0, 3).map(const))
primitive = st.one_of(
    st.tuples(st.sampled_from(FIELDS), operand, operand).map(
        lambda t: assign(t[0], plus(t[1], t[2]))),
    st.tuples(st.integers(0, 3), operand).map(lambda t: {"op": "register_write", "parameters": [
        {"type": "register_array", "value": "r"}, const(t[0]), t[1]]}))


@st.composite
def pipelines(draw) -> dict:
    actions = draw(st.lists(st.lists(primitive, max_size=4), min_size=1, max_size=4))
    count = draw(st.integers(1, 6))
    name = lambda i: f"n{i}" if i < count else None   # noqa: E731
    nodes = []
    for i in range(count):
        later = st.integers(i + 1, count).map(name)
        if draw(st.booleans()):
            ids = draw(st.lists(st.integers(0, len(actions) - 1), min_size=1, max_size=2,
                                unique=True))
            key = [draw(st.sampled_from(FIELDS))] if len(ids) > 1 else []
            nodes.append(table(name(i), ids, draw(later), key))
        else:
            nodes.append(condition(name(i), equals(draw(operand), draw(operand)),
                                   draw(later), draw(later)))
    return program(actions, nodes)


def run(p: dict, state: dict[tuple[str, str], int]) -> tuple[list, dict, dict]:
    """The pipeline's path, registers and fields after one packet; a table
    with two actions runs the first when its key is even."""
    ingress = p["pipelines"][0]
    nodes = {n["name"]: n for n in ingress["tables"] + ingress["conditionals"]}
    actions = {a["id"]: a for a in p["actions"]}
    path, registers, name = [], {}, ingress["init_table"]
    while name:
        node = nodes[name]
        path.append(name)
        if "expression" in node:
            name = node["true_next"] if value(node["expression"], state) else node["false_next"]
            continue
        ids = node["action_ids"]
        chosen = ids[0] if len(ids) == 1 or state.get(tuple(node["key"][0]["target"]), 0) % 2 \
            == 0 else ids[1]
        for prim in actions[chosen]["primitives"]:
            args = prim["parameters"]
            if prim["op"] == "assign":
                state[tuple(args[0]["value"])] = value(args[1], state)
            else:
                registers[int(args[1]["value"], 16)] = value(args[2], state)
        name = node["base_default_next"]
    return path, registers, state


def value(operand: dict, state: dict) -> int:
    if operand["type"] == "hexstr":
        return int(operand["value"], 16)
    if operand["type"] == "field":
        return state.get(tuple(operand["value"]), 0)
    inner = operand["value"]
    if "type" in inner:
        return value(inner, state)
    left, right = value(inner["left"], state), value(inner["right"], state)
    return left + right if inner["op"] == "+" else int(left == right)


@settings(max_examples=400, deadline=None)
@given(pipelines(), st.lists(st.integers(1, 1000), min_size=4, max_size=4))
def test_moved_fields_never_carry_a_value_a_packet_reads(p, garbage):
    moved = copy.deepcopy(p)
    move_scratch_fields(moved)
    path, registers, zeroed = run(p, {})
    stale = {(HEADER, name): g for name, g in zip(FIELDS, garbage)}
    dirty_path, dirty_registers, dirty = run(moved, stale)
    assert dirty_path == path and dirty_registers == registers
    staying = [("scalars", f[0]) for f in moved["header_types"][0]["fields"]]
    assert [dirty.get(k, 0) for k in staying] == [zeroed.get(k, 0) for k in staying]
