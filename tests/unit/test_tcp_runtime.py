"""The TCP runtime on loopback, with the kernel's flow IDs fed directly
(FedIds stands in for the BPF map): the snapshot rule after each read, the
framing of peer messages, channel state, and the checker's verdict."""
from __future__ import annotations

import socket
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beaver.p4src.ids import ID_SPACE, is_newer, newest
from beaver.traffic.oob import protocol as oob
from beaver.p4src.wire import BeaverHeader, Kind
from beaver.traffic.analysis.checker import Trace, check
from beaver.traffic.runtime.datagrams import PeerKind, parse_peer
from beaver.traffic.runtime.eventlog import EventLog
from beaver.traffic.frames import FrameReader, frame, stamp_frame
from beaver.traffic.messages import decode, encode
from beaver.traffic.runtime.snapshots import Mode
from beaver.traffic.outgroup.tcp_client import TcpEndpoint
from beaver.traffic.runtime.tcp import PEER_PORT, TcpRuntime

from tests.support.runtimes import Recorder, dip, eventually, oob_request, outside, vip


class FedIds:
    """The flow -> newest snapshot ID map, as a test sets it; with_newest:
    and the host's newest ID, raised as the kernel program raises it."""

    def __init__(self, default: int | None = None, with_newest: bool = False):
        self.default = default          # the ID of every flow not set
        self.newest = [default or 0] if with_newest else None
        self.ids: dict[tuple, int] = {}
        self.lookups = 0
        self.readers = 0                # one a connection, made before its first read
        self.forgotten: list[tuple] = []
        self._lock = threading.Lock()

    def set(self, client, vip_, snapshot_id: int):
        with self._lock:
            if self.newest is not None:   # first, as decap.c
                self.newest[0] = newest(self.newest[0], snapshot_id)
            self.ids[(tuple(client), tuple(vip_))] = snapshot_id

    def lookup(self, client, vip_):
        with self._lock:
            self.lookups += 1
            return self.ids.get((tuple(client), tuple(vip_)), self.default)

    def reader(self, client, vip_):
        self.readers += 1
        return lambda: self.lookup(client, vip_)

    def forget(self, client, vip_):
        self.forgotten.append((tuple(client), tuple(vip_)))


@pytest.fixture
def tcp(tmp_path):
    """start(name, n, app=Recorder, **args) -> (runtime, app), logging to tmp_path;
    everything stopped after."""
    started, logs = [], []

    def start(name: str, n: int, make_app=Recorder, **kwargs):
        kwargs.setdefault("vips", [vip(n)])
        log = EventLog(tmp_path / f"{name}.jsonl", name, True, "beaver")
        logs.append(log)
        runtime = TcpRuntime(name, dip(n), mgmt=(dip(n), 0), log=log, **kwargs)
        app = make_app(runtime)
        runtime.serve(app)
        started.append(runtime)
        return runtime, app

    def finish() -> Trace:
        for runtime in started:
            runtime.stop()
        for log in logs:
            log.close()
        return Trace.load(sorted(tmp_path.glob("*.jsonl")))

    start.finish = finish
    start.log = lambda name: logs.append(log := EventLog(tmp_path / f"{name}.jsonl", name,
                                                         False)) or log
    yield start
    for runtime in started:
        runtime.stop()


def report(runtime, snapshot_id: int) -> oob.Report:
    return oob.Report.from_message(oob_request(runtime, {"op": "report", "id": snapshot_id}))


def connect(n: int = 0, to: int = 1) -> socket.socket:
    sock = socket.create_connection(vip(to), timeout=2, source_address=(outside(n), 0))
    return sock


def call(sock: socket.socket, message: dict) -> dict:
    sock.sendall(frame(encode(message)))
    reader = FrameReader()
    while not (frames := reader.feed(sock.recv(65536))):
        pass
    return decode(frames[0])


def test_requests_are_answered_on_their_connection_and_the_rule_follows_the_map(tcp):
    ids = FedIds()
    runtime, app = tcp("p1", 1, flow_ids=ids)
    sock = connect()
    ids.set(sock.getsockname(), vip(1), 0)
    assert call(sock, {"id": "c:1", "op": "x"}) == {"ok": True, "handled": 1, "id": "p1:1",
                                                    "re": "c:1"}
    assert sock.getpeername() == vip(1), "Direct Server Return: from the VIP"
    ids.set(sock.getsockname(), vip(1), 3)     # the kernel saw a MARK with ID 3 on this flow
    call(sock, {"id": "c:2"})
    for snapshot_id in (1, 2, 3):              # recorded before c:2 was handled
        r = report(runtime, snapshot_id)
        assert (r.taken, r.trigger, r.local_state) == (True, "mark",
                                                        {"requests": 1, "peer_messages": 0})
    assert len(app.requests) == 2
    client = sock.getsockname()
    sock.close()
    eventually(lambda: (client, vip(1)) in ids.forgotten)


def test_the_flow_is_looked_up_once_a_connection_and_read_once_a_read(tcp):
    ids = FedIds(default=2)
    runtime, app = tcp("p1", 1, flow_ids=ids)
    sock = connect()
    for n in range(1, 4):                      # one at a time: one read each
        assert call(sock, {"id": f"c:{n}"})["handled"] == n
    assert (ids.readers, ids.lookups) == (1, 3)
    assert runtime.snapshots.current_id == 2
    sock.close()


# IDs near 0 and near the wrap, so jumps forward, back, equal and beyond
# half the space (never ordered) all come up.
_IDS = st.one_of(st.integers(0, 6), st.integers(ID_SPACE - 3, ID_SPACE - 1),
                 st.integers(0, ID_SPACE - 1))


@pytest.mark.parametrize("with_newest", [False, True])
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_IDS, min_size=1, max_size=6))
def test_the_rule_on_the_map_ids_is_the_snapshot_rule(tcp, with_newest, map_ids):
    """Whatever IDs the map holds before each request (skipping the call
    when the ID is the one recorded, and the lookup when the host's newest
    is, must change nothing), the process records exactly when the ID is
    newer than its own, before the request."""
    if not hasattr(tcp, "started"):
        tcp.started = tcp("p1", 1, flow_ids=FedIds(with_newest=with_newest))
    runtime, app = tcp.started
    ids = runtime._flow_ids
    recorded = runtime.snapshots.current_id
    with connect() as sock:
        for n, snapshot_id in enumerate(map_ids):
            ids.set(sock.getsockname(), vip(1), snapshot_id)
            handled = call(sock, {"id": f"c:{n}"})["handled"]
            if is_newer(snapshot_id, recorded):
                recorded = snapshot_id
                r = report(runtime, recorded)
                assert (r.taken, r.trigger) == (True, "mark")
                assert r.local_state["requests"] == handled - 1, "before the request"
            assert runtime.snapshots.current_id == recorded


def test_the_flow_is_looked_up_only_when_the_hosts_newest_id_is_not_the_recorded_one(tcp):
    ids = FedIds(default=0, with_newest=True)
    runtime, app = tcp("p1", 1, flow_ids=ids)
    sock = connect()
    call(sock, {"id": "c:1"})
    assert ids.lookups == 1, "the first read checks that a MARK announced the flow"
    call(sock, {"id": "c:2"})
    call(sock, {"id": "c:3"})
    assert ids.lookups == 1, "newest is the recorded ID: no flow holds a newer one"
    other = connect()
    ids.set(other.getsockname(), vip(1), 4)      # another flow's MARK raised newest
    call(sock, {"id": "c:4"})
    assert ids.lookups == 2 and runtime.snapshots.current_id == 0, "this flow is still at 0"
    call(other, {"id": "d:1"})
    assert runtime.snapshots.current_id == 4 and report(runtime, 4).local_state["requests"] == 4
    lookups = ids.lookups
    call(sock, {"id": "c:5"})
    assert ids.lookups == lookups, "newest is the recorded ID again"
    ids.set(sock.getsockname(), vip(1), 5)
    call(sock, {"id": "c:6"})
    assert runtime.snapshots.current_id == 5 and report(runtime, 5).local_state["requests"] == 6
    sock.close()
    other.close()


@pytest.mark.parametrize("with_newest", [False, True])
def test_bytes_of_a_flow_the_kernel_never_marked_are_refused(tcp, with_newest):
    runtime, app = tcp("p1", 1, flow_ids=FedIds(with_newest=with_newest))
    sock = connect()
    sock.sendall(frame(encode({"id": "c:1"})))
    assert sock.recv(100) == b"", "hung up"
    assert app.requests == [] and runtime.drops["no flow ID"] == 1


def test_a_map_ahead_of_the_bytes_snapshots_early_and_the_cut_is_consistent(tcp):
    """The map may hold a newer ID than the bytes a read returned (later
    packets of the flow already passed the kernel program).  The snapshot
    comes before those bytes are handled, and everything the process sends
    afterwards carries the new ID, so the peer records first too."""
    ids = FedIds(default=0)
    client_log = tcp.log("c")
    a, a_app = tcp("a", 1, lambda rt: Recorder(rt, forward_to="b"), flow_ids=ids,
                   peers={"b": dip(2)})
    b, b_app = tcp("b", 2, flow_ids=ids, peers={"a": dip(1)})
    endpoint = TcpEndpoint("c", vip(1), outside(0), client_log)
    assert endpoint.call({"op": "old"}, 2)["handled"] == 1
    ids.default = 5                                 # ahead of the next request's own mark
    assert endpoint.call({"op": "sent before the snapshot"}, 2)["handled"] == 2
    eventually(lambda: len(b_app.peer_messages) == 2)
    r = report(a, 5)
    assert (r.trigger, r.local_state) == ("mark", {"requests": 1, "peer_messages": 0})
    rb = report(b, 5)
    assert (rb.trigger, rb.local_state) == ("peer", {"requests": 0, "peer_messages": 1})
    eventually(lambda: oob_request(b, {"op": "status"})["finished_id"] == 5)
    endpoint.close()
    trace = tcp.finish()
    reports = [r, rb]
    [verdict] = check(trace, [5], reports)
    assert verdict.status == "consistent", str(verdict)


def test_peer_frames_carry_the_stamp_and_complete_the_channel(tcp):
    ids = FedIds()
    runtime, app = tcp("p", 1, flow_ids=ids, peers={"q": dip(9)})
    q_listener = socket.create_server((dip(9), PEER_PORT))   # where p's COUNTs go
    with q_listener, socket.create_connection((dip(1), PEER_PORT),
                                              source_address=(dip(9), 0)) as q:
        oob_request(runtime, {"op": "snapshot", "id": 2})
        # Sent before q's own snapshot, received after p's: on the channel at the cut.
        q.sendall(stamp_frame(0, PeerKind.APP, 1, b"q", encode({"id": "q:1", "op": "a"})))
        q.sendall(stamp_frame(2, PeerKind.APP, 2, b"q", encode({"id": "q:2", "op": "b"})))
        eventually(lambda: len(app.peer_messages) == 2)
        assert [m["id"] for m in report(runtime, 2).channels["q"].in_flight] == ["q:1"]
        assert oob_request(runtime, {"op": "status"})["finished_id"] == 0
        q.sendall(stamp_frame(2, PeerKind.COUNT, 0, b"q",
                              encode({"id": "q:3", "first": 1, "sent_before": 1})))
        eventually(lambda: oob_request(runtime, {"op": "status"})["finished_id"] == 2)
        # A newer stamp: the state is recorded before its message is handled.
        q.sendall(stamp_frame(3, PeerKind.APP, 3, b"q", encode({"id": "q:4", "op": "c"})))
        eventually(lambda: len(app.peer_messages) == 3)
        r = report(runtime, 3)
        assert (r.trigger, r.local_state) == ("peer", {"requests": 0, "peer_messages": 2})


def test_what_the_runtime_sends_a_peer_is_stamped_and_counted(tcp):
    ids = FedIds()
    listener = socket.create_server((dip(9), PEER_PORT))
    runtime, _ = tcp("p", 1, lambda rt: Recorder(rt, forward_to="q"), flow_ids=ids,
                     peers={"q": dip(9)})
    sock = connect()
    ids.set(sock.getsockname(), vip(1), 4)
    call(sock, {"id": "c:1"})
    channel, _ = listener.accept()
    channel.settimeout(2)
    reader, got = FrameReader(), []
    while not got:
        got += reader.feed(channel.recv(65536))
    header = BeaverHeader.unpack(got[0])
    peer, body = parse_peer(got[0][BeaverHeader.SIZE:])
    # The snapshot (before the request) is counted by the message: 0 sent before 1..4.
    assert (header.kind, header.snapshot_id, peer.kind, peer.seq, peer.sender,
            peer.counted_from) == (Kind.STAMP, 4, PeerKind.APP_COUNTED, 1, "p", 1)
    assert decode(body)["op"] == "forwarded"
    sock.close()
    channel.close()
    listener.close()


def test_a_peer_frame_from_the_wrong_address_is_dropped(tcp):
    runtime, app = tcp("p", 1, flow_ids=FedIds(), peers={"q": dip(9)})
    with socket.create_connection((dip(1), PEER_PORT), source_address=(dip(8), 0)) as s:
        s.sendall(stamp_frame(7, PeerKind.APP, 1, b"q", encode({"id": "q:1"})))
        assert s.recv(10) == b""
    assert runtime.drops["unknown peer"] == 1 and app.peer_messages == []
    assert runtime.snapshots.current_id == 0


@pytest.mark.parametrize("mode", [Mode.OFF, Mode.LAI_YANG])
def test_without_beaver_marks_the_map_is_not_read(tcp, mode):
    ids = FedIds()
    runtime, app = tcp("p", 1, flow_ids=ids, mode=mode)
    sock = connect()
    ids.set(sock.getsockname(), vip(1), 9)
    assert call(sock, {"id": "c:1"})["handled"] == 1
    assert ids.lookups == 0
    sock.close()
