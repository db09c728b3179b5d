"""The OOB frame encoder (traffic/oob/protocol.py): byte for byte what
json.dumps writes, without its check for circular references; a message
holding a cycle still fails, and the server answers it as one error line
and goes on serving."""
from __future__ import annotations

import json
import socket

from hypothesis import given, settings, strategies as st

from beaver.traffic.oob import protocol as oob
from beaver.traffic.oob.server import OobServer

values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=4), inner, max_size=4)),
    max_leaves=20)


@settings(max_examples=200, deadline=None, database=None)
@given(st.dictionaries(st.text(max_size=4), values, max_size=5))
def test_a_frame_is_what_json_dumps_writes(message):
    body = json.dumps(message, separators=(",", ":")).encode()
    assert oob.encode(message) == len(body).to_bytes(4, "big") + body


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
