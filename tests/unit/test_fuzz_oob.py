"""Fuzzing the out-of-band protocol (issue 25): frames as a process's OOB
server reads them, the requests it answers, and the reports the controller
reads back.  A frame is answered, or refused with an error answer and
counted; no reader raises anything but ProtocolError (or ConnectionError
for a stream that ended mid-frame)."""
from __future__ import annotations

import json
import socket
import struct

import pytest
from hypothesis import given, strategies as st

from beaver.traffic.oob import protocol as oob
from beaver.traffic.runtime.udp import Runtime

from tests.support.fuzz import fuzz, json_bytes, json_values
from tests.support.runtimes import Recorder, dip, vip
from tests.support.slb import slb_ip

ME = 24   # the runtime's dip(n)

snapshot_ids = st.integers(-2, 2**32 + 1) | json_values
requests = st.fixed_dictionaries(
    {"v": st.sampled_from([1, 1, 1, 2, "1", None])},
    optional={"op": st.sampled_from(["status", "snapshot", "report", "resume", "dance"])
              | json_values,
              "id": snapshot_ids, "ids": st.lists(snapshot_ids, max_size=5) | json_values,
              "base": snapshot_ids, "state": json_values})


@st.composite
def frames(draw) -> bytes:
    """A length prefix (right or not) and a body (a request, any JSON, any bytes)."""
    body = draw(json_bytes(requests))
    length = draw(st.sampled_from([len(body)] * 4 + [0, len(body) + 3, oob.MAX_MESSAGE + 1]))
    return struct.pack("!I", length) + body


@fuzz
@given(frames() | st.binary(max_size=12))
def test_a_frame_is_read_as_a_message_or_refused(data):
    reader, writer = socket.socketpair()
    with reader, writer:
        writer.sendall(data)
        writer.shutdown(socket.SHUT_WR)
        try:
            message = oob.receive(reader)
        except (oob.ProtocolError, ConnectionError):
            return
    assert isinstance(message, dict) and message["v"] == oob.VERSION


@pytest.fixture(scope="module")
def runtime():
    runtime = Runtime("p", dip(ME), vips=[vip(ME)], slbs=[slb_ip(1)], peers={"q": dip(9)},
                      mgmt=(dip(ME), 0))
    runtime.serve(Recorder(runtime))
    yield runtime
    runtime.stop()


@fuzz
@given(frames())
def test_the_oob_server_answers_every_frame_or_refuses_it_and_counts(runtime, data):
    refused = runtime.drops["bad OOB request"]
    (length,) = struct.unpack("!I", data[:4])
    with socket.create_connection(runtime.oob_address, timeout=5) as s:
        s.sendall(data)
        if len(data) - 4 < length <= oob.MAX_MESSAGE:   # short of its length: it waits
            s.shutdown(socket.SHUT_WR)
            assert s.recv(1) == b""   # and at the end of the stream, hangs up unanswered
            return
        answer = oob.receive(s)
        if answer["op"] == "error" and runtime.drops["bad OOB request"] > refused:
            assert s.recv(1) == b""   # refused: the stream may be out of step, hung up
        else:   # answered: the connection serves on
            assert oob.request(s, {"v": 1, "op": "status"})["op"] == "status"
    assert runtime.drops["OOB internal error"] == 0 and runtime.drops["internal error"] == 0


ids = st.integers(0, 2**32 - 1)
channels = st.dictionaries(st.text(max_size=3), st.fixed_dictionaries({
    "sent_before": st.integers(0, 9), "received_before": st.integers(0, 9),
    "in_flight": st.lists(st.fixed_dictionaries({"id": st.text(max_size=3)}), max_size=2)}),
    max_size=2)


@st.composite
def reports(draw) -> dict:
    """A report as a process sends it, whole or with one field of any JSON
    (or missing), maybe as changes from a base."""
    report = {"v": 1, "op": "report", "process": draw(st.text(max_size=3)),
              "snapshot_id": draw(ids), "taken": draw(st.booleans()),
              "trigger": "peer", "taken_at_us": draw(st.integers(0, 10**6)),
              "local_state": draw(json_values), "current_id": draw(ids),
              "finished_id": draw(ids), "channels": draw(channels)}
    if draw(st.booleans()):
        del report["local_state"]
        report["delta"] = {"base": draw(st.integers(0, 3)), "changes": draw(
            st.fixed_dictionaries({}, optional={"=": json_values, "set": json_values,
                                                "del": json_values, "in": json_values}))}
    field = draw(st.sampled_from([None, None, *report]))
    if field is not None:
        value = draw(json_values | st.just(KeyError))
        if value is KeyError:
            del report[field]
        else:
            report[field] = value
    return report


@fuzz
@given(reports() | json_values, st.none() | st.tuples(st.integers(0, 3), json_values))
def test_a_report_is_read_with_its_types_checked_or_refused(message, held):
    try:
        report = oob.Report.from_message(message).rebuilt(held)
    except oob.ProtocolError:
        return
    assert isinstance(report.process, str) and type(report.taken) is bool
    assert all(type(c.sent_before) is int and isinstance(c.in_flight, list)
               for c in report.channels.values())
    json.dumps(report.to_message())   # what the store keeps encodes
