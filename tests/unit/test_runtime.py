"""The in-group runtime over real UDP sockets on loopback, with SLB packets
crafted by scapy."""
from __future__ import annotations

import collections
import json
import logging
import socket
import struct

import pytest
from scapy.layers.inet import IP, TCP, UDP

from beaver.traffic.oob import protocol as oob
from beaver.p4src.wire import BeaverHeader, Kind
from beaver.traffic.runtime.datagrams import PeerKind, pack_peer, parse_peer
from beaver.traffic.runtime.eventlog import EventLog, read_log
from beaver.traffic.runtime.udp import Runtime
from beaver.traffic.runtime.snapshots import Mode

from tests.support.packets import Beaver
from tests.support.runtimes import (Recorder, client_socket, dip, eventually, from_slb, oob_request,
                       peer_socket, runtimes, send_request, vip)
from tests.support.slb import encapsulate, slb_ip

__all__ = ["peer_socket", "runtimes"]   # the fixtures


def stamp(snapshot_id: int, kind: PeerKind, sender: str, body: dict, seq: int = 0) -> bytes:
    """What an in-group peer sends: STAMP, peer header, JSON."""
    return (bytes(Beaver(kind=Kind.STAMP, snapshot_id=snapshot_id))
            + pack_peer(kind, seq, sender.encode()) + json.dumps(body).encode())


def mark(snapshot_id: int, inner) -> bytes:
    return bytes(Beaver(kind=Kind.MARK, origin=1, snapshot_id=snapshot_id) / inner)


@pytest.fixture
def client():
    sock = client_socket()
    yield sock
    sock.close()


def test_a_request_is_handled_and_answered_from_the_vip(runtimes, client):
    _, app = runtimes("p1", 1)
    reply = send_request(client, dip(1), vip(1), {"id": "c:1", "op": "x"}, mark=0)
    assert reply == {"ok": True, "handled": 1, "id": "p1:1", "re": "c:1"}
    assert app.requests == [{"id": "c:1", "op": "x"}]


def test_a_newer_mark_records_the_state_before_the_request_is_handled(runtimes, client):
    runtime, _ = runtimes("p1", 1)
    send_request(client, dip(1), vip(1), {"id": "c:1"}, mark=0)
    send_request(client, dip(1), vip(1), {"id": "c:2"}, mark=3)
    for snapshot_id in (1, 2, 3):   # one local snapshot serves the whole jump
        report = oob.Report.from_message(oob_request(runtime, {"op": "report", "id": snapshot_id}))
        assert (report.taken, report.trigger, report.local_state) == (
            True, "mark", {"requests": 1, "peer_messages": 0})
    assert oob_request(runtime, {"op": "status"})["current_id"] == 3


def test_a_peer_stamp_snapshots_the_receiver_first_and_counts_complete_both_channels(
        runtimes, client):
    a, _ = runtimes("a", 1, lambda rt: Recorder(rt, forward_to="b"), peers={"b": dip(2)})
    b, b_app = runtimes("b", 2, peers={"a": dip(1)})
    send_request(client, dip(1), vip(1), {"id": "c:1"}, mark=2)
    eventually(lambda: b_app.peer_messages)
    report = oob.Report.from_message(oob_request(b, {"op": "report", "id": 2}))
    assert (report.trigger, report.local_state["peer_messages"]) == ("peer", 0)
    for runtime in (a, b):
        eventually(lambda: oob_request(runtime, {"op": "status"})["finished_id"] == 2)


def test_an_older_stamp_after_the_snapshot_is_channel_state(runtimes, peer_socket):
    runtime, app = runtimes("p", 1, peers={"q": dip(9)})
    oob_request(runtime, {"op": "snapshot", "id": 1})
    count = peer_socket.recv(100)   # p announces it had sent q nothing before snapshot 1
    assert BeaverHeader.unpack(count) == BeaverHeader(Kind.STAMP, 1)
    header, body = parse_peer(count[BeaverHeader.SIZE:])
    assert (header.kind, header.sender) == (PeerKind.COUNT, "p")
    assert json.loads(body) == {"first": 1, "sent_before": 0, "id": "p:1"}

    peer_socket.sendto(stamp(0, PeerKind.APP, "q", {"id": "q:1", "x": 1}, seq=1), (dip(1), 4790))
    peer_socket.sendto(stamp(1, PeerKind.COUNT, "q", {"id": "q:2", "first": 1, "sent_before": 1}),
                       (dip(1), 4790))
    eventually(lambda: oob_request(runtime, {"op": "status"})["finished_id"] == 1)
    channel = oob.Report.from_message(oob_request(runtime, {"op": "report", "id": 1})).channels["q"]
    assert (channel.sent_before, channel.received_before) == (0, 0)
    assert channel.in_flight == [{"id": "q:1", "seq": 1, "stamp": 0,
                                  "message": {"id": "q:1", "x": 1}}]
    assert app.peer_messages == [({"id": "q:1", "x": 1}, "q")]   # still delivered


def bad_datagrams(client_address) -> list[tuple[bytes, str]]:
    to_vip = IP(src=client_address[0], dst=vip(1)[0]) / UDP(sport=client_address[1],
                                                           dport=vip(1)[1])
    good = bytes(to_vip / b'{"id":"c:0"}')
    header = BeaverHeader(Kind.MARK, 9).pack()
    return [
        (b"\x12", "bad Beaver header"),
        (BeaverHeader(Kind.MARK, 9, version=2).pack() + good, "bad Beaver header"),
        (bytes([0x13, 0, 0, 0, 0, 9]) + good, "bad Beaver header"),
        (header + good[:12], "truncated"),
        (header + good + b"tail", "bad length"),
        (mark(9, IP(src="127.0.4.50", dst=vip(1)[0]) / TCP(dport=7000) / b"{}"), "not UDP"),
        (mark(9, IP(src="127.0.4.50", dst=vip(1)[0], ihl=4) / UDP(dport=7000)), "bad inner IPv4"),
        (mark(9, IP(src="127.0.4.50", dst=vip(1)[0], flags="MF") / UDP(dport=7000)), "fragment"),
        (header + bytes(IP(dst=vip(1)[0]) / UDP(dport=7001) / b'{"id":"c:0"}'), "unknown VIP"),
        (header + bytes(to_vip / b"not json"), "bad message"),
        (header + bytes(to_vip / b'{"no":"id"}'), "bad message"),
        (stamp(9, PeerKind.APP, "stranger", {"id": "s:1"}), "unknown peer"),
        (stamp(9, PeerKind.APP, "q", {"id": "q:1"}), "unknown peer"),   # not from q's address
        (bytes(Beaver(kind=Kind.STAMP, snapshot_id=9)) + struct.pack("!BIB", 9, 0, 1) + b"q{}",
         "bad peer header"),
        (bytes(Beaver(kind=Kind.STAMP, snapshot_id=9)) + b"\x01\x00", "truncated"),
        (bytes(Beaver(kind=Kind.STAMP, snapshot_id=9)) + struct.pack("!BIB", 3, 1, 1) + b"q\x00\x00",
         "truncated"),   # APP_COUNTED without its 4-byte first ID
        (bytes(Beaver(kind=Kind.STAMP, snapshot_id=9)) + struct.pack("!BIB", 3, 0, 1) + b"q"
         + struct.pack("!I", 1) + b'{"id":"q:1"}', "bad peer header"),   # counted, at position 0
    ]


BAD_FROM_PEER_Q = [
    (stamp(9, PeerKind.APP, "q", {"no": "id"}), "bad message"),
    (stamp(9, PeerKind.COUNT, "q", {"id": "q:1", "first": "one"}), "bad message"),
]


def test_malformed_datagrams_are_counted_logged_and_change_nothing(runtimes, client,
                                                                   peer_socket, caplog, tmp_path):
    log = EventLog(tmp_path / "p.jsonl", "p", in_group=True)
    runtime, app = runtimes("p", 1, peers={"q": dip(9)}, log=log)
    bad = bad_datagrams(client.getsockname()) + BAD_FROM_PEER_Q
    with caplog.at_level(logging.WARNING, logger="beaver.traffic.runtime.udp"):
        for datagram, _ in BAD_FROM_PEER_Q:
            peer_socket.sendto(datagram, (dip(1), 4790))
        for datagram, _ in bad[:-len(BAD_FROM_PEER_Q)]:
            from_slb(datagram, dip(1))
        eventually(lambda: sum(runtime.drops.values()) == len(bad))
        # Each reason's first drop is logged, just after it is counted.
        eventually(lambda: {r for _, r in bad}
                   <= {m.split("(")[1].split(":")[0] for m in caplog.messages})
    assert runtime.drops == collections.Counter(reason for _, reason in bad)
    assert oob_request(runtime, {"op": "status"})["current_id"] == 0
    assert app.requests == [] and app.peer_messages == []
    runtime.stop()
    log.close()
    assert [e["kind"] for e in read_log(tmp_path / "p.jsonl")[1]] == ["end"]


def test_a_mark_from_an_address_that_is_no_slb_is_counted_logged_and_changes_nothing(
        runtimes, client, caplog, tmp_path):
    log = EventLog(tmp_path / "p.jsonl", "p", in_group=True)
    runtime, app = runtimes("p", 1, slbs=[slb_ip(1)], log=log)
    forged = encapsulate(client.getsockname(), vip(1), b'{"id":"c:1"}', 1000)
    with caplog.at_level(logging.WARNING, logger="beaver.traffic.runtime.udp"):
        client.sendto(forged, (dip(1), 4790))   # the client forging its own SLB packet
        from_slb(forged, dip(1), slb_id=2)      # an SLB this runtime was not given
        eventually(lambda: runtime.drops["not from an SLB"] == 2)
        eventually(lambda: "dropped what 127.0.4.32:" in caplog.text)   # logged after counted
    status = oob_request(runtime, {"op": "status"})
    assert (status["current_id"], status["drops"]) == (0, {"not from an SLB": 2})
    assert app.requests == []
    # The same datagram from the configured SLB is a request, and moves the ID.
    from_slb(forged, dip(1), slb_id=1)
    eventually(lambda: app.requests == [{"id": "c:1"}])
    assert oob_request(runtime, {"op": "status"})["current_id"] == 1000
    runtime.stop()
    log.close()
    assert [(e["kind"], e.get("msg")) for e in read_log(tmp_path / "p.jsonl")[1]] == [
        ("snapshot", None), ("recv", "c:1"), ("send", "p:1"), ("end", None)]


def test_a_runtime_serving_vips_must_know_its_slbs():
    with pytest.raises(ValueError, match="knows no SLB address"):
        Runtime("p", dip(1), vips=[vip(1)], mgmt=(dip(1), 0))


def test_an_application_error_is_counted_and_serving_goes_on(runtimes, client, caplog):
    runtime, _ = runtimes("p", 1)
    from_slb(mark(0, IP(src=client.getsockname()[0], dst=vip(1)[0])
                  / UDP(sport=client.getsockname()[1], dport=vip(1)[1])
                  / b'{"id":"c:0","fail":true}'), dip(1))
    assert send_request(client, dip(1), vip(1), {"id": "c:1"}, mark=0)["ok"]
    assert runtime.drops == {"app error": 1}
    assert "asked to fail" in caplog.text


@pytest.mark.parametrize("request_, error", [
    ({"op": "dance"}, "unknown op"),
    ({"op": "report", "id": "7"}, "bad snapshot id"),
    ({"op": "report", "id": -1}, "bad snapshot id"),
    ({"op": "snapshot", "id": True}, "bad snapshot id"),
    ({"op": "report", "id": 0}, "not kept"),
])
def test_bad_oob_requests_get_an_error(runtimes, request_, error):
    runtime, _ = runtimes("p", 1)
    with pytest.raises(oob.ProtocolError, match=error):
        oob_request(runtime, request_)


def test_a_malformed_oob_frame_gets_an_error_then_the_connection_closes(runtimes):
    runtime, _ = runtimes("p", 1)
    with socket.create_connection(runtime.oob_address, timeout=2) as s:
        s.sendall(struct.pack("!I", 5) + b"nope!")
        assert oob.receive(s)["op"] == "error"
        assert s.recv(1) == b""


def test_a_report_for_a_future_id_is_not_taken(runtimes):
    runtime, _ = runtimes("p", 1)
    report = oob.Report.from_message(oob_request(runtime, {"op": "report", "id": 4}))
    assert (report.taken, report.current_id) == (False, 0)


def test_lai_yang_ignores_marks_and_follows_the_controller(runtimes, client):
    runtime, _ = runtimes("p", 1, mode=Mode.LAI_YANG)
    send_request(client, dip(1), vip(1), {"id": "c:1"}, mark=5)
    assert oob_request(runtime, {"op": "status"})["current_id"] == 0
    report = oob.Report.from_message(oob_request(runtime, {"op": "snapshot", "id": 5}))
    assert (report.taken, report.trigger, report.local_state["requests"]) == (True, "oob", 1)


def test_polling_snapshots_only_on_its_timer(runtimes, client):
    runtime, _ = runtimes("p", 1, mode=Mode.POLLING, poll_interval=3600)
    send_request(client, dip(1), vip(1), {"id": "c:1"}, mark=5)
    oob_request(runtime, {"op": "snapshot", "id": 5})
    assert oob_request(runtime, {"op": "status"})["current_id"] == 0
    runtime.poll()   # the timer's tick
    report = oob.Report.from_message(oob_request(runtime, {"op": "report", "id": 1}))
    assert (report.trigger, report.local_state["requests"]) == ("timer", 1)


def test_off_has_no_snapshots_and_stamps_zero(runtimes, client, peer_socket):
    runtime, _ = runtimes("p", 1, lambda rt: Recorder(rt, forward_to="q"), mode=Mode.OFF,
                          peers={"q": dip(9)})
    send_request(client, dip(1), vip(1), {"id": "c:1"}, mark=5)
    assert BeaverHeader.unpack(peer_socket.recv(200)) == BeaverHeader(Kind.STAMP, 0)
    with pytest.raises(oob.ProtocolError, match="mode off"):
        oob_request(runtime, {"op": "snapshot", "id": 5})


def test_the_event_log_puts_the_snapshot_before_the_receive_it_preceded(runtimes, client,
                                                                         tmp_path):
    log = EventLog(tmp_path / "p.jsonl", "p", in_group=True, mode="beaver")
    runtime, _ = runtimes("p", 1, log=log)
    send_request(client, dip(1), vip(1), {"id": "c:1"}, mark=1)
    runtime.stop()
    log.close()
    header, events = read_log(tmp_path / "p.jsonl")
    assert header["process"] == "p" and header["in_group"] is True
    assert [(e["kind"], e.get("msg"), e.get("trigger")) for e in events] == [
        ("snapshot", None, "mark"), ("recv", "c:1", None), ("send", "p:1", None),
        ("end", None, None)]
