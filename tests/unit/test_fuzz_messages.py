"""Fuzzing JSON messages (issue 25): whatever the bytes, decode returns a
message within its bounds or raises MessageError, and bounded JSON never
lets a RecursionError out."""
from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, strategies as st

from beaver.traffic.boundedjson import JsonError, loads
from beaver.traffic.messages import MAX_DEPTH, MAX_ID, MessageError, decode

from tests.support.fuzz import fuzz, json_bytes, json_values, nested


def depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


messages = st.fixed_dictionaries({"id": st.text(max_size=300) | json_values},
                                 optional={"op": json_values, "x": json_values})


@fuzz
@given(json_bytes(messages | json_values))
def test_a_message_is_decoded_within_its_bounds_or_refused(data):
    try:
        message = decode(data)
    except MessageError as e:
        assert e.reason == "bad message"
        return
    assert isinstance(message["id"], str) and len(message["id"]) <= MAX_ID
    assert depth(message) <= MAX_DEPTH


@fuzz
@given(nested(), st.integers(0, 200), st.booleans())
def test_bounded_json_refuses_what_is_too_deep_and_nothing_else(data, max_depth, as_text):
    text = data.decode() if as_text else data
    try:
        value = loads(text, max_depth)
    except JsonError:
        assert depth_of_text(data) > max_depth
        return
    assert value == json.loads(data) and depth(value) <= max_depth


def depth_of_text(data: bytes) -> int:
    return data.count(b"[") + data.count(b"{")   # nested() opens one bracket a level


def finite(value) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(map(finite, value.values()))
    if isinstance(value, list):
        return all(map(finite, value))
    return True


@fuzz
@given(json_values)
def test_bounded_json_takes_json_numbers_and_refuses_nan_and_infinity(value):
    text = json.dumps(value)   # NaN, Infinity and -Infinity as json.dumps writes them
    if finite(value):
        assert loads(text, 1000) == json.loads(text)
    else:
        with pytest.raises(JsonError, match="not JSON"):
            loads(text, 1000)


@pytest.mark.parametrize("text", ["[1e400]", '{"a":-2e308}', "1E999"])
def test_bounded_json_refuses_a_float_past_its_range(text):
    assert not finite(json.loads(text))   # which json.loads makes infinity
    with pytest.raises(JsonError, match="past a float's range"):
        loads(text, 4)
