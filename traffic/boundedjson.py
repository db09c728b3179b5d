"""JSON from outside the process (the network, a log file), read with its
nesting bounded.

json.loads recurses once per level of nesting: text nested a thousand
levels deep raises RecursionError, which no reader expects and which ends
the thread that reads it.  Text just shallow enough to parse may fail later,
when it is encoded again inside an envelope (a message inside a report).  So
every reader of outside JSON calls loads() with the depth its format needs.

Numbers are JSON's: json.loads also takes NaN and Infinity, and makes
infinity of a float too large (1e400), none of which JSON (RFC 8259) has or
orjson writes back (as null).  loads refuses them.
"""
from __future__ import annotations

import json
import math
from typing import Any


class JsonError(ValueError):
    """Text that is not JSON, or JSON nested deeper than its reader allows."""


def _refuse_constant(name: str):
    raise JsonError(f"not JSON: {name}")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise JsonError(f"not JSON: {text[:40]} is past a float's range")
    return number


_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_refuse_constant)


def loads(data: bytes | str, max_depth: int) -> Any:
    """The JSON value in data (bytes: UTF-8), nested at most max_depth levels
    ("[]" is one)."""
    try:
        # Decoded here: json.loads would first guess among UTF-8, -16 and -32.
        text = data if isinstance(data, str) else data.decode()
        value = _DECODER.decode(text)
    except RecursionError:
        raise JsonError(f"nested deeper than {max_depth} levels") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise JsonError(f"not JSON: {e}") from None
    # Each level opens a bracket, so text with few brackets is shallow: counted
    # in C, this spares the walk below to nearly every message.
    if text.count("[") + text.count("{") > max_depth and _deeper_than(value, max_depth):
        raise JsonError(f"nested deeper than {max_depth} levels")
    return value


def _deeper_than(value: Any, max_depth: int) -> bool:
    """Walks value level by level (no recursion), at most max_depth + 1 levels."""
    level = [value]
    for _ in range(max_depth + 1):
        containers = [v for v in level if isinstance(v, (dict, list))]
        if not containers:
            return False
        level = [child for c in containers for child in (c.values() if isinstance(c, dict) else c)]
    return True
