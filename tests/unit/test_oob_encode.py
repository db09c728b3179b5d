"""The OOB frame encoder (traffic/oob/protocol.py): orjson, or the json
module's encoder for what orjson refuses; either way a frame reads back as
what json.dumps writes for the message reads back.  A message holding a
cycle still fails, and the server answers it as one error line and goes on
serving."""
from __future__ import annotations

import json
import socket
from dataclasses import dataclass

import pytest

from hypothesis import given, settings, strategies as st

from beaver.traffic.oob import protocol as oob
from beaver.traffic.oob.server import OobServer

# What orjson refuses is here too: integers past 64 bits, keys that are not
# strings, nesting past 254 levels.  Floats are finite: boundedjson refuses
# the others.
keys = st.text(max_size=4) | st.integers() | st.booleans() | st.none()
values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False,
                                                                 allow_infinity=False),
              st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(keys, inner, max_size=4)),
    max_leaves=20)


def nested(levels: int) -> dict:
    message: dict = {"v": 1}
    inner = message
    for _ in range(levels):
        inner["x"] = {}
        inner = inner["x"]
    return message


def frame_reads_back(message: dict):
    frame = oob.encode(message)
    assert int.from_bytes(frame[:4], "big") == len(frame) - 4
    assert json.loads(frame[4:]) == json.loads(json.dumps(message))


@settings(max_examples=300, deadline=None, database=None)
@given(st.dictionaries(keys, values, max_size=5))
def test_a_frame_reads_back_as_what_json_dumps_writes(message):
    frame_reads_back(message)


def test_what_orjson_refuses_goes_through_the_json_module():
    frame_reads_back({"v": 1, "big": 2 ** 64, "small": -2 ** 63 - 1})
    frame_reads_back({"v": 1, "keys": {1: "a", None: "b", True: "c"}})
    frame_reads_back(nested(300))


def test_a_dataclass_fails_as_the_json_module_fails():
    @dataclass
    class Point:
        x: int

    with pytest.raises(TypeError, match="not JSON serializable"):
        oob.encode({"v": 1, "point": Point(1)})


def test_a_cycle_is_answered_as_one_error_and_the_server_goes_on():
    cyclic: dict = {"v": 1, "op": "report"}
    cyclic["local_state"] = {"back": cyclic}
    dropped = []
    server = OobServer(("127.0.0.1", 0), lambda message: cyclic if message["op"] == "report"
                       else {"v": 1, "op": "status"},
                       lambda reason, error, source, trace=False: dropped.append(reason))
    server.start()
    try:
        with socket.create_connection(server.address, timeout=5) as sock:
            oob.send(sock, {"v": 1, "op": "report"})
            answer = oob.receive(sock)
            assert answer["op"] == "error" and "recursion" in answer["error"]
            assert "\n" not in answer["error"]
            assert oob.request(sock, {"v": 1, "op": "status"})["op"] == "status"
    finally:
        server.stop()
    assert dropped == ["OOB internal error"]
