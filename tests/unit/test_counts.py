"""COUNT announcements (traffic/runtime/peering.py): the local snapshots a
process records between two COUNTs to a peer share the second, which is
sent before the next APP message to that peer, or by the interval's timer."""
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

from tests.support.runtimes import (Recorder, client_socket, dip, oob_request, runtimes,
                                    send_request, vip)

__all__ = ["runtimes"]   # the fixture


def read(sock: socket.socket) -> tuple[PeerKind, int, int, dict]:
    """What arrived from the runtime: (kind, stamp, seq, body)."""
    data = sock.recv(65535)
    header = BeaverHeader.unpack(data)
    assert header.kind is Kind.STAMP
    peer, body = parse_peer(data[BeaverHeader.SIZE:])
    return peer.kind, header.snapshot_id, peer.seq, json.loads(body)


@pytest.fixture
def q():
    """Stands in for peer "q" at dip(9):4790, to see what the runtime sends it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((dip(9), 4790))
    sock.settimeout(2)
    yield sock
    sock.close()


def test_snapshots_share_one_count_sent_before_the_next_message(runtimes, q):
    runtime, _ = runtimes("p", 1, lambda rt: Recorder(rt, forward_to="q"), peers={"q": dip(9)},
                          count_interval=60)   # the timer never fires here
    client = client_socket()
    for snapshot_id in (1, 2, 3):
        oob_request(runtime, {"op": "snapshot", "id": snapshot_id})
    send_request(client, dip(1), vip(1), {"id": "c:1"}, mark=3)   # forwarded to q
    kind, stamp, _, body = read(q)
    assert (kind, stamp, body["first"], body["sent_before"]) == (PeerKind.COUNT, 3, 1, 0)
    assert read(q)[:3] == (PeerKind.APP, 3, 1)
    oob_request(runtime, {"op": "snapshot", "id": 4})
    send_request(client, dip(1), vip(1), {"id": "c:2"}, mark=4)
    kind, stamp, _, body = read(q)
    assert (kind, stamp, body["first"], body["sent_before"]) == (PeerKind.COUNT, 4, 4, 1)
    assert read(q)[:3] == (PeerKind.APP, 4, 2)
    client.close()


def test_the_timer_announces_when_no_message_goes_to_the_peer(runtimes, q):
    runtime, _ = runtimes("p", 1, peers={"q": dip(9)}, count_interval=0.05)
    oob_request(runtime, {"op": "snapshot", "id": 2})   # one local snapshot for 1..2
    kind, stamp, _, body = read(q)
    assert (kind, stamp, body["first"], body["sent_before"]) == (PeerKind.COUNT, 2, 1, 0)
    q.settimeout(0.3)
    with pytest.raises(socket.timeout):   # announced once
        q.recv(65535)


def test_interval_zero_sends_a_count_a_snapshot(runtimes, q):
    runtime, _ = runtimes("p", 1, peers={"q": dip(9)}, count_interval=0)
    for snapshot_id in (1, 2):
        oob_request(runtime, {"op": "snapshot", "id": snapshot_id})
    assert [(stamp, body["first"]) for _, stamp, _, body in (read(q), read(q))] == [(1, 1), (2, 2)]
    assert not any(t.name.endswith("-counts") for t in threading.enumerate())


class Announcer(PeerHandling):
    """PeerHandling alone, its sends recorded: no sockets, no threads."""

    def __init__(self, peers: list[str]):
        self.name, self.mode, self._peers = "p", Mode.BEAVER, dict.fromkeys(peers, "")
        self._count_interval, self._lock, self._log, self._number = 1.0, threading.RLock(), NoLog(), 0
        self.snapshots = Snapshots("p", peers, Mode.BEAVER, lambda: None, window=1000)
        self._unannounced = {}
        self.sent: list[tuple[str, PeerKind, int, int, dict]] = []

    def _send_stamped(self, peer, kind, seq, body, message_id):
        self.sent.append((peer, kind, self.snapshots.current_id, seq, json.loads(body)))


STEPS = st.lists(st.one_of(st.tuples(st.just("snapshot"), st.integers(1, 5)),
                           st.tuples(st.just("send"), st.sampled_from(["q", "r"])),
                           st.just(("tick", None))), max_size=40)


@settings(max_examples=200, deadline=None)
@given(STEPS)
def test_each_id_is_announced_once_with_the_count_its_snapshot_recorded(steps):
    p = Announcer(["q", "r"])
    for step, arg in steps:
        if step == "snapshot":
            p._took(p.snapshots.oob(p.snapshots.current_id + arg))
        elif step == "send":
            p._send_peer(arg, PeerKind.APP, p._app_seq(arg), {})
        else:
            p._announce()   # the timer
    p._announce()
    for peer in ("q", "r"):
        counts = [(body["first"], stamp, body["sent_before"])
                  for to, kind, stamp, _, body in p.sent if to == peer and kind is PeerKind.COUNT]
        # the ranges follow one another, from ID 1 to the newest, each once
        assert [first for first, _, _ in counts] == [1, *(last + 1 for _, last, _ in counts)][:len(counts)]
        assert (counts[-1][1] if counts else 0) == p.snapshots.current_id
        for first, last, sent_before in counts:
            for snapshot_id in range(first, last + 1):
                assert sent_before == p.snapshots.report(snapshot_id).channels[peer].sent_before
        # an APP message is never sent while an ID before it is unannounced
        for index, (to, kind, stamp, _, _) in enumerate(p.sent):
            if to == peer and kind is PeerKind.APP:
                announced = max((s for t, k, s, _, _ in p.sent[:index]
                                 if t == peer and k is PeerKind.COUNT), default=0)
                assert announced == stamp
