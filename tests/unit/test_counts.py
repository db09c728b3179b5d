"""Counts (traffic/runtime/peering.py): the local snapshots a process
records before its next APP message to a peer are counted by that message
(APP_COUNTED), or after the interval by one COUNT."""
from __future__ import annotations

import json
import socket
import threading

import pytest
from hypothesis import given, settings, strategies as st

from beaver.p4src.wire import BeaverHeader, Kind
from beaver.traffic.runtime.datagrams import PeerKind, parse_peer
from beaver.traffic.runtime.eventlog import NoLog
from beaver.traffic.runtime.peering import PeerHandling
from beaver.traffic.runtime.snapshots import Mode, Snapshots

from tests.support.runtimes import (Recorder, client_socket, dip, eventually, oob_request,
                                    peer_socket, runtimes, send_request, vip)

__all__ = ["peer_socket", "runtimes"]   # the fixtures


def read(sock: socket.socket) -> tuple[PeerKind, int, int, dict, int | None]:
    """What arrived from the runtime: (kind, stamp, seq, body, counted_from)."""
    data = sock.recv(65535)
    header = BeaverHeader.unpack(data)
    assert header.kind is Kind.STAMP
    peer, body = parse_peer(data[BeaverHeader.SIZE:])
    return peer.kind, header.snapshot_id, peer.seq, json.loads(body), peer.counted_from


def test_the_next_message_counts_the_snapshots_before_it(runtimes, peer_socket):
    runtime, _ = runtimes("p", 1, lambda rt: Recorder(rt, forward_to="q"), peers={"q": dip(9)},
                          count_interval=60)   # the timer never fires here
    client = client_socket()
    for snapshot_id in (1, 2, 3):
        oob_request(runtime, {"op": "snapshot", "id": snapshot_id})
    send_request(client, dip(1), vip(1), {"id": "c:1"}, mark=3)   # forwarded to q
    kind, stamp, seq, body, counted_from = read(peer_socket)   # 0 sent before 1..3: seq 1
    assert (kind, stamp, seq, counted_from, body["op"]) == (PeerKind.APP_COUNTED, 3, 1, 1,
                                                            "forwarded")
    send_request(client, dip(1), vip(1), {"id": "c:2"}, mark=3)   # no snapshot since
    kind, stamp, seq, _, counted_from = read(peer_socket)
    assert (kind, stamp, seq, counted_from) == (PeerKind.APP, 3, 2, None)
    oob_request(runtime, {"op": "snapshot", "id": 4})
    send_request(client, dip(1), vip(1), {"id": "c:3"}, mark=4)
    kind, stamp, seq, _, counted_from = read(peer_socket)   # 2 sent before 4
    assert (kind, stamp, seq, counted_from) == (PeerKind.APP_COUNTED, 4, 3, 4)
    peer_socket.settimeout(0.3)
    with pytest.raises(socket.timeout):   # no COUNT besides
        peer_socket.recv(65535)
    client.close()


def test_a_counted_message_completes_the_receiver_s_channel(runtimes):
    p, _ = runtimes("p", 1, lambda rt: Recorder(rt, forward_to="q"), peers={"q": dip(2)},
                    count_interval=60)
    q, q_app = runtimes("q", 2, peers={"p": dip(1)}, count_interval=60)
    client = client_socket()
    oob_request(p, {"op": "snapshot", "id": 2})
    oob_request(q, {"op": "snapshot", "id": 2})
    assert oob_request(q, {"op": "status"})["finished_id"] == 0   # p's count not known yet
    send_request(client, dip(1), vip(1), {"id": "c:1"}, mark=2)   # forwarded to q, counted
    eventually(lambda: q_app.peer_messages)
    assert oob_request(q, {"op": "status"})["finished_id"] == 2
    client.close()


def test_the_timer_counts_when_no_message_goes_to_the_peer(runtimes, peer_socket):
    runtime, _ = runtimes("p", 1, peers={"q": dip(9)}, count_interval=0.05)
    oob_request(runtime, {"op": "snapshot", "id": 2})   # one local snapshot for 1..2
    kind, stamp, _, body, _ = read(peer_socket)
    assert (kind, stamp, body["first"], body["sent_before"]) == (PeerKind.COUNT, 2, 1, 0)
    peer_socket.settimeout(0.3)
    with pytest.raises(socket.timeout):   # counted once
        peer_socket.recv(65535)


def test_lai_yang_counts_at_once_as_published(runtimes, peer_socket):
    runtime, _ = runtimes("p", 1, peers={"q": dip(9)}, mode=Mode.LAI_YANG, count_interval=60)
    oob_request(runtime, {"op": "snapshot", "id": 1})
    kind, stamp, _, body, _ = read(peer_socket)   # not after 60 s
    assert (kind, stamp, body["first"], body["sent_before"]) == (PeerKind.COUNT, 1, 1, 0)


def test_interval_zero_sends_a_count_a_snapshot(runtimes, peer_socket):
    runtime, _ = runtimes("p", 1, peers={"q": dip(9)}, count_interval=0)
    for snapshot_id in (1, 2):
        oob_request(runtime, {"op": "snapshot", "id": snapshot_id})
    assert [(stamp, body["first"]) for _, stamp, _, body, _ in (read(peer_socket), read(peer_socket))] == [(1, 1), (2, 2)]
    assert not any(t.name.endswith("-counts") for t in threading.enumerate())


class Announcer(PeerHandling):
    """PeerHandling alone, its sends recorded: no sockets, no threads."""

    def __init__(self, peers: list[str]):
        self.name, self.mode, self._peers = "p", Mode.BEAVER, dict.fromkeys(peers, "")
        self._count_interval, self._lock, self._log, self._number = 1.0, threading.RLock(), NoLog(), 0
        self.snapshots = Snapshots("p", peers, Mode.BEAVER, lambda: None, window=1000)
        self._uncounted = {}
        self.sent: list[tuple[str, PeerKind, int, int, dict]] = []

    def _send_stamped(self, peer, kind, seq, body, message_id, counted_from=None):
        self.sent.append((peer, kind, self.snapshots.current_id, seq, json.loads(body),
                          counted_from))


STEPS = st.lists(st.one_of(st.tuples(st.just("snapshot"), st.integers(1, 5)),
                           st.tuples(st.just("send"), st.sampled_from(["q", "r"])),
                           st.just(("tick", None))), max_size=40)


@settings(max_examples=200, deadline=None)
@given(STEPS)
def test_each_id_is_counted_once_with_the_sent_before_its_snapshot_recorded(steps):
    p = Announcer(["q", "r"])
    for step, arg in steps:
        if step == "snapshot":
            p._took(p.snapshots.oob(p.snapshots.current_id + arg))
        elif step == "send":
            p._send_app(arg, {})
        else:
            p._send_counts()   # the timer
    p._send_counts()
    for peer in ("q", "r"):
        counts = [(body["first"], stamp, body["sent_before"]) if kind is PeerKind.COUNT
                  else (counted_from, stamp, seq - 1)
                  for to, kind, stamp, seq, body, counted_from in p.sent
                  if to == peer and kind is not PeerKind.APP]
        # the ranges follow one another, from ID 1 to the newest, each once
        assert [first for first, _, _ in counts] == [1, *(last + 1 for _, last, _ in counts)][:len(counts)]
        assert (counts[-1][1] if counts else 0) == p.snapshots.current_id
        for first, last, sent_before in counts:
            for snapshot_id in range(first, last + 1):
                assert sent_before == p.snapshots.report(snapshot_id).channels[peer].sent_before
        # an APP message counts every ID up to its stamp, if no message before it did
        for index, (to, kind, stamp, *_) in enumerate(p.sent):
            if to == peer and kind is not PeerKind.COUNT:
                counted = max((s for t, k, s, *_ in p.sent[:index + 1]
                               if t == peer and k is not PeerKind.APP), default=0)
                assert counted == stamp
