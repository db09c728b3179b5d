"""p4src/masks.py: masks of masks merged, every value the same, and the
committed builds merged (packets through them: tests/bmv2)."""
from __future__ import annotations

import copy
import json

from hypothesis import given, strategies as st

from beaver.p4src import BMV2_JSON, PLAIN_BMV2_JSON
from beaver.p4src.masks import merge_masks

FIELDS = {"a": 0x1_2345_6789_abcd_ef01_2345_6789_abcd, "b": 0xffff_0000_ffff, "c": 7}
BINARY = {"&": int.__and__, "|": int.__or__, "+": int.__add__,
          ">>": int.__rshift__, "<<": lambda x, k: x << (k % 130)}


def field(name: str) -> dict:
    return {"type": "field", "value": ["scalars", name]}


def const(value: int) -> dict:
    return {"type": "hexstr", "value": hex(value)}


def expression(op: str, left: dict, right: dict) -> dict:
    return {"type": "expression", "value": {"op": op, "left": left, "right": right}}


def evaluate(node: dict) -> int:
    """A BMv2 expression over non-negative multiprecision numbers, as
    BMv2 evaluates one before it truncates the result to its target."""
    if node["type"] == "field":
        return FIELDS[node["value"][1]]
    if node["type"] == "hexstr":
        return int(node["value"], 16)
    inner = node["value"]
    if inner.get("type") == "expression":   # the wrapper p4c puts around a parameter
        return evaluate(inner)
    return BINARY[inner["op"]](evaluate(inner["left"]), evaluate(inner["right"]))


def operations(node) -> int:
    if isinstance(node, dict):
        return ("op" in node and "left" in node) + sum(map(operations, node.values()))
    return sum(map(operations, node)) if isinstance(node, list) else 0


def slice_(value: dict, low: int, width: int, within: int) -> dict:
    """value[low + width - 1:low] of a value `within` bits wide, as p4c
    lowers it: a shift, the type's mask, then the slice's."""
    shifted = expression(">>", value, const(low))
    return expression("&", expression("&", shifted, const((1 << within) - 1)),
                      const((1 << width) - 1))


masks = st.integers(0, 1 << 120)
leaves = st.one_of(st.sampled_from(sorted(FIELDS)).map(field), masks.map(const))
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(expression, st.sampled_from(sorted(BINARY)), inner, inner),
        st.builds(lambda e, m: expression("&", e, const(m)), inner, masks)),
    max_leaves=12)


@given(trees)
def test_merging_changes_no_value_and_adds_no_operation(tree):
    merged = copy.deepcopy(tree)
    count = merge_masks(merged)
    assert evaluate(merged) == evaluate(tree)
    assert operations(merged) == operations(tree) - count


def test_a_slice_of_a_slice_is_one_shift_and_one_mask():
    # st[111:80] of a bit<113>, then its low 8 bits: p4c's three masks
    value = expression("&", slice_(field("a"), 80, 32, 113), const(0xff))
    wrapped = {"type": "expression", "value": value}
    assert merge_masks(wrapped) == 2
    assert wrapped["value"] == expression("&", expression(">>", field("a"), const(80)),
                                          const(0xff))
    assert evaluate(wrapped) == (FIELDS["a"] >> 80) & 0xff


def test_a_mask_of_another_operation_stays():
    # (a | 1) & M: the inner operation is no mask, and (a & 3) | 4 has none on top
    kept = [expression("&", expression("|", field("a"), const(1)), const(0xff)),
            expression("|", expression("&", field("a"), const(3)), const(4)),
            expression("&", expression("&", field("a"), field("b")), const(0xff))]
    for tree in kept:
        before = copy.deepcopy(tree)
        assert merge_masks(tree) == 0 and tree == before


def test_the_committed_builds_hold_no_mask_of_a_mask():
    for path in (BMV2_JSON, PLAIN_BMV2_JSON):
        program = json.loads(path.read_text())
        assert merge_masks(program) == 0, f"{path}: compile it again (python -m beaver.p4src.compiler)"
