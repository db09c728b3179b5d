"""Hostile input cannot stop an in-group process (issue 25, items 1 and 2):
every datagram, frame and out-of-band request that reaches one is either
served or refused, counted and logged, and the process serves the next good
request as if nothing had come."""
from __future__ import annotations

import json
import logging
import socket
import struct

import pytest

from beaver.traffic.oob import protocol as oob
from beaver.traffic.frames import frame, stamp_frame
from beaver.traffic.messages import encode
from beaver.traffic.runtime import udp
from beaver.traffic.runtime.datagrams import PeerKind
from beaver.traffic.runtime.eventlog import EventLog, read_log
from beaver.traffic.runtime.tcp import PEER_PORT

from tests.support.runtimes import (Recorder, client_socket, dip, eventually, from_slb, oob_request,
                                   runtimes, send_request, vip)
from tests.support.slb import encapsulate
from tests.unit.test_runtime import stamp
from tests.unit.test_tcp_runtime import FedIds, call, connect, tcp

__all__ = ["runtimes", "tcp"]   # the fixtures

# A request nested 5,000 levels deep: json.loads raised RecursionError on it,
# which ended the receive thread.
DEEP = b'{"id":"c:9","x":' + b"[" * 5000 + b"]" * 5000 + b"}"


@pytest.fixture
def client():
    sock = client_socket()
    yield sock
    sock.close()


def events(path) -> list[tuple[str, str | None]]:
    return [(e["kind"], e.get("msg")) for e in read_log(path)[1]]


def test_a_request_nested_5000_deep_is_refused_and_the_process_serves_on(runtimes, client,
                                                                          tmp_path, caplog):
    log = EventLog(tmp_path / "p.jsonl", "p", in_group=True)
    runtime, app = runtimes("p", 1, log=log)
    from_slb(encapsulate(client.getsockname(), vip(1), DEEP, snapshot_id=7), dip(1))
    eventually(lambda: runtime.drops["bad message"] == 1)
    eventually(lambda: "nested deeper than 64 levels" in caplog.text)   # logged after counted
    # Nothing changed: no snapshot for its mark, nothing delivered, nothing logged.
    assert oob_request(runtime, {"op": "status"})["current_id"] == 0 and app.requests == []
    assert send_request(client, dip(1), vip(1), {"id": "c:10"}, mark=0)["ok"]
    assert app.requests == [{"id": "c:10"}]
    runtime.stop()
    log.close()
    assert events(tmp_path / "p.jsonl") == [("recv", "c:10"), ("send", "p:1"), ("end", None)]


def test_a_peer_message_nested_5000_deep_is_refused_and_the_process_serves_on(runtimes, client):
    runtime, app = runtimes("p", 1, peers={"q": dip(9)})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as q:
        q.bind((dip(9), 0))
        datagram = stamp(5, PeerKind.APP, "q", {}, seq=1)[:-2] + DEEP   # the peer header, then DEEP
        q.sendto(datagram, (dip(1), 4790))
        eventually(lambda: runtime.drops["bad message"] == 1)
    status = oob_request(runtime, {"op": "status"})
    assert (status["current_id"], app.peer_messages) == (0, [])   # its stamp moved nothing
    assert runtime.snapshots.received == {"q": 0}
    assert send_request(client, dip(1), vip(1), {"id": "c:1"}, mark=0)["ok"]


def test_an_oversized_message_id_is_refused(runtimes, client):
    runtime, app = runtimes("p", 1)
    message = json.dumps({"id": "c" * 257}).encode()
    from_slb(encapsulate(client.getsockname(), vip(1), message, snapshot_id=3), dip(1))
    eventually(lambda: runtime.drops["bad message"] == 1)
    assert app.requests == [] and runtime.snapshots.current_id == 0
    assert send_request(client, dip(1), vip(1), {"id": "c" * 256}, mark=0)["ok"]


def test_an_oob_frame_nested_5000_deep_gets_an_error_and_the_server_serves_on(runtimes):
    runtime, _ = runtimes("p", 1)
    body = b'{"v":1,"op":"status","x":' + b"[" * 5000 + b"]" * 5000 + b"}"
    with socket.create_connection(runtime.oob_address, timeout=2) as s:
        s.sendall(struct.pack("!I", len(body)) + body)
        answer = oob.receive(s)
        assert (answer["op"], answer["error"]) == ("error", "nested deeper than 256 levels")
        assert s.recv(1) == b""   # the stream may be out of step: hung up
    assert oob_request(runtime, {"op": "status"})["drops"] == {"bad OOB request": 1}


def test_an_error_no_check_foresaw_is_counted_with_its_source_and_the_loop_goes_on(
        runtimes, client, monkeypatch, caplog):
    runtime, app = runtimes("p", 1)
    real = udp.parse_inner

    def buggy(body: bytes):   # a bug that only this one request meets
        if b"trip" in body:
            raise KeyError("a bug")
        return real(body)

    monkeypatch.setattr(udp, "parse_inner", buggy)
    with caplog.at_level(logging.WARNING):
        from_slb(encapsulate(client.getsockname(), vip(1), b'{"id":"c:1","trip":1}', 4), dip(1))
        eventually(lambda: runtime.drops["internal error"] == 1)
        record = eventually(lambda: next((r for r in caplog.records
                                          if "internal error" in r.getMessage()), None))
    assert "127.0.4.31:" in record.getMessage() and record.exc_info[0] is KeyError
    assert send_request(client, dip(1), vip(1), {"id": "c:2"}, mark=0)["ok"]
    assert app.requests == [{"id": "c:2"}] and runtime.snapshots.current_id == 0


class Unencodable(Recorder):
    """An application's bug, met out of band: a local state JSON cannot encode."""

    def local_state(self):
        return {"bad": object()}


def test_an_oob_answer_that_fails_is_an_error_answer_counted_and_the_server_serves_on(
        runtimes, caplog):
    runtime, _ = runtimes("p", 1, Unencodable)
    with socket.create_connection(runtime.oob_address, timeout=2) as s:
        with pytest.raises(oob.ProtocolError, match="internal error: .*not JSON serializable"):
            oob.request(s, {"v": oob.VERSION, "op": "snapshot", "id": 1})
        # The same connection goes on.
        assert oob.request(s, {"v": oob.VERSION, "op": "status"})["drops"] == {
            "OOB internal error": 1}
    assert "Traceback" in caplog.text and "OOB internal error" in caplog.text


def test_a_tcp_request_nested_5000_deep_hangs_up_and_the_runtime_serves_on(tcp):
    ids = FedIds(default=0)
    runtime, app = tcp("p", 1, flow_ids=ids)
    with connect() as sock:
        sock.sendall(frame(DEEP))
        assert sock.recv(100) == b"", "hung up"
    assert runtime.drops["bad message"] == 1 and app.requests == []
    with connect() as sock:
        assert call(sock, {"id": "c:1"})["ok"]


def test_a_tcp_peer_frame_nested_5000_deep_hangs_up_and_the_next_connection_is_served(tcp):
    runtime, app = tcp("p", 1, flow_ids=FedIds(), peers={"q": dip(9)})
    with socket.create_connection((dip(1), PEER_PORT), source_address=(dip(9), 0)) as q:
        q.sendall(stamp_frame(6, PeerKind.APP, 1, b"q", DEEP))
        assert q.recv(10) == b""
    assert runtime.drops["bad message"] == 1 and runtime.snapshots.current_id == 0
    with socket.create_connection((dip(1), PEER_PORT), source_address=(dip(9), 0)) as q:
        q.sendall(stamp_frame(0, PeerKind.APP, 1, b"q", encode({"id": "q:1"})))
        eventually(lambda: app.peer_messages == [({"id": "q:1"}, "q")])


def test_an_error_no_check_foresaw_ends_one_tcp_connection_only(tcp, monkeypatch, caplog):
    ids = FedIds(default=0)
    runtime, app = tcp("p", 1, flow_ids=ids)
    real = ids.lookup

    def buggy(client, vip_):   # a bug that only the first connection meets
        if client[1] == first_port:
            raise KeyError("a bug")
        return real(client, vip_)

    monkeypatch.setattr(ids, "lookup", buggy)
    with connect() as sock:
        first_port = sock.getsockname()[1]
        sock.sendall(frame(encode({"id": "c:1"})))
        assert sock.recv(100) == b""
    assert runtime.drops["internal error"] == 1 and app.requests == []
    assert "Traceback" in caplog.text
    with connect() as sock:
        assert call(sock, {"id": "c:2"})["ok"]


@pytest.mark.parametrize("count", [{"first": -5, "sent_before": 0},
                                   {"first": 1 << 32, "sent_before": 0},
                                   {"first": 1, "sent_before": -1}])
def test_a_count_out_of_range_is_refused_and_changes_nothing(runtimes, count):
    runtime, _ = runtimes("p", 1, peers={"q": dip(9)})
    oob_request(runtime, {"op": "snapshot", "id": 1})
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as q:
        q.bind((dip(9), 0))
        q.sendto(stamp(1, PeerKind.COUNT, "q", {"id": "q:1", **count}), (dip(1), 4790))
        eventually(lambda: runtime.drops["bad message"] == 1)
    assert all(not counts for record in runtime.snapshots.records
               for counts in record.counts.values())
    assert oob_request(runtime, {"op": "status"})["finished_id"] == 0


def test_a_tcp_frame_announcing_2_gib_hangs_up_at_once_and_the_runtime_serves_on(tcp):
    runtime, app = tcp("p", 1, flow_ids=FedIds(default=0))
    with connect() as sock:
        sock.sendall(struct.pack("!I", 1 << 31))   # nothing buffered towards it
        assert sock.recv(100) == b"", "hung up"
    assert runtime.drops["bad frame"] == 1 and app.requests == []
    with connect() as sock:
        assert call(sock, {"id": "c:1"})["ok"]
