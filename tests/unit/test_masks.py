"""p4src/masks.py: the masks that change nothing removed, every value the
same, and the committed builds simplified (packets through them:
tests/bmv2)."""
from __future__ import annotations

import copy
import json

from hypothesis import given, strategies as st

from beaver.p4src import BMV2_JSON, PLAIN_BMV2_JSON
from beaver.p4src.masks import field_widths, simplify_masks

WIDTHS = {"a": 113, "b": 48, "c": 1, "s": 16}   # s is signed: its value may be negative
SIGNED = {"s"}
BINARY = {"&": int.__and__, "|": int.__or__, "+": int.__add__, "-": int.__sub__,
          ">>": lambda x, k: x >> abs(k), "<<": lambda x, k: x << (k % 130),
          "<": lambda x, y: int(x < y)}
PROGRAM = {"header_types": [{"name": "scalars_0", "fields": [
               [name, width, name in SIGNED] for name, width in WIDTHS.items()]}],
           "headers": [{"name": "scalars", "header_type": "scalars_0"}]}


def field(name: str) -> dict:
    return {"type": "field", "value": ["scalars", name]}


def const(value: int) -> dict:
    return {"type": "hexstr", "value": hex(value)}


def expression(op: str, left: dict | None, right: dict) -> dict:
    return {"type": "expression", "value": {"op": op, "left": left, "right": right}}


def choice(cond: dict, left: dict, right: dict) -> dict:
    """p4c's cond ? left : right."""
    return {"type": "expression", "value": {"op": "?", "left": left, "right": right,
                                            "cond": cond}}


def evaluate(node: dict, fields: dict[str, int]) -> int:
    """A BMv2 expression over multiprecision numbers, as BMv2 evaluates
    one before it truncates the result to its target."""
    if node["type"] == "field":
        return fields[node["value"][1]]
    if node["type"] == "hexstr":
        return int(node["value"], 16)
    inner = node["value"]
    if inner.get("type") in ("expression", "field", "hexstr"):   # a parameter's wrapper
        return evaluate(inner, fields)
    if inner["op"] == "?":
        return evaluate(inner["left" if evaluate(inner["cond"], fields) else "right"], fields)
    if inner["op"] == "~":
        return ~evaluate(inner["right"], fields)
    return BINARY[inner["op"]](evaluate(inner["left"], fields), evaluate(inner["right"], fields))


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


# (every bit set as often as not: Hypothesis favours small numbers, whose top bits a
# needless mask would not show)
field_values = st.fixed_dictionaries(
    {name: st.integers(-(1 << (width - 1)), (1 << (width - 1)) - 1) if name in SIGNED
     else st.one_of(st.integers(0, (1 << width) - 1),
                    st.integers(0, (1 << width) - 1).map(lambda v, w=width: v | (1 << w - 1)))
     for name, width in WIDTHS.items()})
masks = st.one_of(st.integers(0, 1 << 120), st.integers(0, 120).map(lambda n: (1 << n) - 1))


@st.composite
def edge_slices(draw) -> dict:
    """A field, maybe shifted, under a mask of the bits it can have, one off
    either way: where a mask stops or starts mattering."""
    name = draw(st.sampled_from(sorted(WIDTHS)))
    shift = draw(st.integers(0, WIDTHS[name] + 1))
    value = field(name) if shift == 0 else expression(">>", field(name), const(shift))
    bits = max(WIDTHS[name] - shift + draw(st.integers(-1, 1)), 0)
    return expression("&", value, const((1 << bits) - 1))


leaves = st.one_of(st.sampled_from(sorted(WIDTHS)).map(field), masks.map(const), edge_slices())
trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(expression, st.sampled_from(sorted(BINARY)), inner, inner),
        st.builds(lambda e, m: expression("&", e, const(m)), inner, masks),
        st.builds(lambda e, k: expression(">>", e, const(k)), inner, st.integers(0, 120)),
        st.builds(lambda e, k: expression("<<", e, const(k)), inner, st.integers(0, 120)),
        st.builds(lambda e: expression("~", None, e), inner),
        st.builds(lambda c, l, r: choice(expression("<", c, copy.deepcopy(l)), l, r),
                  inner, inner, inner)),
    max_leaves=12)


@given(trees, field_values)
def test_simplifying_changes_no_value_and_adds_no_operation(tree, fields):
    wrapped = {"type": "expression", "value": tree}   # as p4c wraps a parameter
    simplified = copy.deepcopy(wrapped)
    removed = simplify_masks(simplified, field_widths(PROGRAM))
    assert evaluate(simplified, fields) == evaluate(wrapped, fields)
    assert operations(simplified) == operations(wrapped) - removed


def test_a_slice_of_a_slice_is_one_shift_and_one_mask():
    # a[111:80] of a bit<113>, then its low 8 bits: p4c's three masks
    value = expression("&", slice_(field("a"), 80, 32, 113), const(0xff))
    wrapped = {"type": "expression", "value": value}
    assert simplify_masks(wrapped, field_widths(PROGRAM)) == 2
    assert wrapped["value"] == expression("&", expression(">>", field("a"), const(80)),
                                          const(0xff))


def test_a_mask_over_every_bit_a_field_or_its_shift_can_have_goes():
    top_bit = {"type": "expression", "value": slice_(field("a"), 112, 1, 113)}   # a[112:112]
    assert simplify_masks(top_bit, field_widths(PROGRAM)) == 2
    assert top_bit == {"type": "expression", "value": expression(">>", field("a"), const(112))}
    whole = {"type": "expression", "value": expression("&", field("b"), const((1 << 48) - 1))}
    assert simplify_masks(whole, field_widths(PROGRAM)) == 1
    assert whole == {"type": "expression", "value": field("b")}


def test_a_mask_over_every_bit_an_operation_can_give_goes():
    # st[112:80] ++ count ++ last, as the mark packs it: the masks of each
    # concatenation and the last one's over a choice of two 48-bit values
    count = expression("&", expression("+", slice_(field("a"), 48, 32, 113), field("c")),
                       const(0xffffffff))
    high = expression("|", expression("<<", expression(">>", field("a"), const(80)), const(32)),
                      count)
    last = choice(expression("<", field("b"), field("b")),
                  expression("&", field("a"), const((1 << 48) - 1)), field("b"))
    packed = expression("|", expression("&", expression("<<", expression(
        "&", high, const((1 << 65) - 1)), const(48)), const((1 << 113) - 1)),
        expression("&", last, const((1 << 48) - 1)))
    wrapped = {"type": "expression", "value": packed}
    before = copy.deepcopy(wrapped)
    # the three masks of 65, 113 and 48 bits, and the slice's type mask merged
    assert simplify_masks(wrapped, field_widths(PROGRAM)) == 4
    assert operations(wrapped) == operations(before) - 4
    assert "0x1ffffffffffffffff" not in json.dumps(wrapped)   # 65 bits
    assert wrapped["value"]["value"]["right"]["value"]["op"] == "?"   # its 48-bit mask gone


def test_a_mask_that_drops_a_bit_stays():
    # fewer bits than the value has; a signed field; an unknown field; no constant
    kept = [expression("&", expression(">>", field("a"), const(80)), const(0xffffffff)),
            expression("&", field("b"), const((1 << 47) - 1)),
            expression("&", field("s"), const(0xffff)),
            expression("&", field("unknown"), const(1)),
            expression("&", expression("|", field("c"), const(2)), const(1)),
            expression("&", expression("<<", field("b"), const(1)), const((1 << 48) - 1)),
            expression("&", expression("+", field("b"), field("b")), const((1 << 48) - 1)),
            expression("&", expression("~", None, field("c")), const(1)),
            expression("&", expression("-", field("c"), field("c")), const(1)),
            expression("&", field("a"), field("b"))]
    for tree in kept:
        wrapped = {"type": "expression", "value": tree}
        before = copy.deepcopy(wrapped)
        assert simplify_masks(wrapped, field_widths(PROGRAM)) == 0 and wrapped == before


def test_a_varbit_field_has_no_width_to_go_by():
    program = {"header_types": [{"name": "options_t", "fields": [["kind", 8, False],
                                                                 ["data", "*"]]}],
               "headers": [{"name": "options", "header_type": "options_t"}]}
    assert field_widths(program) == {("options", "kind"): 8}
    masked = {"type": "expression", "value": expression(
        "&", {"type": "field", "value": ["options", "data"]}, const(0xff))}
    before = copy.deepcopy(masked)
    assert simplify_masks(masked, field_widths(program)) == 0 and masked == before


def test_the_committed_builds_hold_no_mask_that_changes_nothing():
    for path in (BMV2_JSON, PLAIN_BMV2_JSON):
        program = json.loads(path.read_text())
        assert simplify_masks(program) == 0, f"{path}: compile it again (python -m beaver.p4src.compiler)"
