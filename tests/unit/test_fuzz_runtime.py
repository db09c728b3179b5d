"""Fuzzing what reaches an in-group process's UDP port (issue 25): MARKs
and STAMPs from an SLB, a peer and a stranger, their headers, packets and
JSON drawn from right and wrong values.  Every datagram is either taken
(one receive in the event log) or refused and counted under a reason of
its own: none is lost unseen, none is an error no check foresaw."""
from __future__ import annotations

import json
import socket
import struct

import pytest
from hypothesis import given, strategies as st

from beaver.p4src.wire import Kind
from beaver.traffic.runtime.datagrams import PeerKind, pack_peer
from beaver.traffic.runtime.udp import Runtime

from tests.support.fuzz import client_packets, fuzz, json_bytes, json_values
from tests.support.runtimes import dip, vip
from tests.support.slb import slb_ip

ME, PEER, STRANGER = 21, 22, 23   # dip(n) of the runtime, its peer "q", someone else
UNFORESEEN = ("internal error", "app error")


class Taken:
    """An application that takes everything and answers nothing (a reply
    would go to whatever client address the fuzz made up)."""

    def __init__(self):
        self.requests = self.peer_messages = 0

    def on_request(self, message, client):
        self.requests += 1

    def on_peer(self, message, sender):
        self.peer_messages += 1

    def local_state(self):
        return {"requests": self.requests, "peer_messages": self.peer_messages}


class Receives:
    """An event log that counts receives (the runtime logs one per datagram taken)."""

    def __init__(self):
        self.count = 0

    def recv(self, msg, peer, ctl=False):
        self.count += 1

    def send(self, msg, peer, ctl=False):
        pass

    def snapshot(self, first, last, trigger):
        pass


@pytest.fixture(scope="module")
def runtime():
    runtime = Runtime("p", dip(ME), vips=[vip(ME)], slbs=[slb_ip(1)], peers={"q": dip(PEER)},
                      mgmt=(dip(ME), 0), log=Receives())
    runtime.serve(Taken())
    yield runtime
    runtime.stop()


def inner_packet(payload: bytes) -> bytes:
    """A client's whole IPv4/UDP packet to the runtime's VIP."""
    ip, port = vip(ME)
    udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, 17, 0,
                       socket.inet_aton("127.0.4.50"), socket.inet_aton(ip)) + udp


requests = st.fixed_dictionaries({"id": st.text(max_size=12)},
                                 optional={"op": json_values, "x": json_values})
counts = st.fixed_dictionaries({"id": st.text(max_size=12), "first": st.integers(-5, 2**33),
                                "sent_before": st.integers(-5, 2**33)})
FAULTS = [None] * 4 + ["version", "kind", "source", "sender", "peer kind", "cut", "payload"]


@st.composite
def datagrams(draw) -> tuple[bytes, str]:
    """(datagram, source ip): a MARK from the SLB or a STAMP from the peer,
    whole or with one fault: the header, who sent it, what it claims to be
    from, its length, or its contents (any JSON, any bytes, any packet)."""
    fault = draw(st.sampled_from(FAULTS))
    kind = draw(st.sampled_from([Kind.MARK, Kind.STAMP]))
    version = draw(st.sampled_from([0, 2, 15])) if fault == "version" else 1
    header = struct.pack("!BBI", (version << 4) | (draw(st.sampled_from([0, 3, 15]))
                                                   if fault == "kind" else kind),
                         draw(st.integers(0, 255)), draw(st.integers(0, 2**32 - 1)))
    payload = draw(json_bytes(requests | counts)) if fault == "payload" else None
    if kind == Kind.MARK:
        body = (draw(st.builds(inner_packet, st.just(payload)) | client_packets())
                if payload is not None else inner_packet(json.dumps(draw(requests)).encode()))
        source = slb_ip(1)
    else:
        peer_kind = draw(st.sampled_from([PeerKind.APP, PeerKind.COUNT, PeerKind.APP_COUNTED]))
        if fault == "peer kind":
            peer_kind = draw(st.sampled_from([0, 4, 255]))
        sender = draw(st.sampled_from([b"p", b"stranger", b"\xff"])) if fault == "sender" else b"q"
        if payload is None:
            payload = json.dumps(draw(counts if peer_kind == PeerKind.COUNT else requests)).encode()
        counted_from = (draw(st.integers(0, 2**32 - 1)) if peer_kind == PeerKind.APP_COUNTED
                        else None)
        body = pack_peer(peer_kind, draw(st.integers(0, 2**32 - 1)), sender, counted_from) + payload
        source = dip(PEER)
    if fault == "source":
        source = draw(st.sampled_from([slb_ip(1), dip(PEER), dip(STRANGER)]).filter(
            lambda ip: ip != source))
    cut = draw(st.sampled_from([0, 3, 7, 12])) if fault == "cut" else None
    return (header + body)[:cut], source


@fuzz
@given(datagrams())
def test_every_datagram_is_taken_or_refused_and_counted(runtime, datagram):
    data, source = datagram
    refused, taken = sum(runtime.drops.values()), runtime._log.count
    runtime._handle(data, (source, 4790))
    assert sum(runtime.drops.values()) + runtime._log.count == refused + taken + 1
    assert not any(runtime.drops[reason] for reason in UNFORESEEN), runtime.drops
