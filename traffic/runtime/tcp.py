"""The in-group runtime for TCP services.

    runtime = TcpRuntime("kv1", dip="10.0.1.1", vips=[("10.200.0.1", 7000)],
                         peers={"kv2": "10.0.1.2"}, flow_ids=FlowIds(map_id),
                         mode=Mode.BEAVER, log=EventLog(...))
    runtime.serve(app)      # the same App as runtime.py's: on_request, on_peer, local_state
    runtime.reply(client, message); runtime.send(peer, message)
    runtime.stop()

Clients connect to VIP:port; the SLB encapsulates their packets, and the
host's kernel decapsulation program (traffic/runtime/bpf/decap.c) strips them
before TCP sees them, recording per flow the newest snapshot ID seen (the
map `flow_ids`).  Replies go back on the connection, whose local address is
the VIP: Direct Server Return.  Every request and reply is one
length-prefixed JSON frame (frames.py).

In-group peers talk over TCP on DIP:4790, one connection per direction, so
each channel is FIFO.  Each frame is what a UDP STAMP holds: the sender's
snapshot ID, the peer header (kind, channel sequence, sender), the JSON.
Channel state is kept exactly as for UDP (snapshots.py): APP messages are
counted per channel and each snapshot is followed by a COUNT to every peer.
A peer frame is accepted only from that peer's address.

As in runtime.py, every handler and every snapshot runs under one lock.
What a connection sends cannot stop the runtime: bad frames and messages
are counted in `drops` and the connection is closed; an error no check
foresaw ends that connection only, counted ("internal error") and logged
with its traceback and source; the listeners go on accepting.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Protocol, Sequence

from beaver.traffic.oob.protocol import OOB_PORT
from beaver.p4src.wire import BEAVER_UDP_PORT, RING_SIZE, BeaverHeader, Kind, WireError

from beaver.traffic.runtime.datagrams import Address, DatagramError, PeerKind, address_text, parse_peer, peer_name
from beaver.traffic.runtime.eventlog import NoLog
from beaver.traffic.frames import FrameError, FrameReader, frame, stamp_frame
from beaver.traffic.messages import Message, MessageError, decode, encode
from beaver.traffic.oob.server import OobServer
from beaver.traffic.runtime.peering import COUNT_INTERVAL, PeerHandling
from beaver.traffic.runtime.udp import App
from beaver.traffic.runtime.snapshots import Mode, Snapshots

log = logging.getLogger(__name__)

PEER_PORT = BEAVER_UDP_PORT    # the same number, over TCP


class FlowIdSource(Protocol):
    """The newest snapshot ID the kernel saw on a client's flow (flowmap.FlowIds)."""

    # newest[0]: the newest ID of any flow, raised before any flow's (None: not known)
    newest: Sequence[int] | None

    def reader(self, client: Address, vip: Address) -> Callable[[], int | None]:
        """Reads the flow's newest ID (None: none) each time it is called."""

    def forget(self, client: Address, vip: Address) -> None: ...


@dataclass(frozen=True)
class TcpClient:
    """A request's connection: the reply goes back on it."""
    address: Address
    vip: Address
    request_id: str
    connection: socket.socket


class TcpRuntime(PeerHandling):
    def __init__(self, name: str, dip: str, *, vips: Iterable[Address] = (),
                 peers: Mapping[str, str] | None = None, flow_ids: FlowIdSource | None = None,
                 mode: Mode = Mode.BEAVER, mgmt: Address | None = None,
                 poll_interval: float | None = None, log=None, window: int = RING_SIZE,
                 count_interval: float = COUNT_INTERVAL):
        """flow_ids: where the snapshot IDs of client flows are read (needed in Mode.BEAVER).
        The other arguments are udp.py's."""
        if mode is Mode.POLLING and not poll_interval:
            raise ValueError("Mode.POLLING needs a poll_interval")
        if mode is Mode.BEAVER and flow_ids is None:
            raise ValueError(f"{name}: Mode.BEAVER over TCP needs the kernel's flow IDs")
        self.name = name
        self.mode = mode
        self._dip = dip
        self._name = peer_name(name)
        self._peers = dict(peers or {})
        if name in self._peers:
            raise ValueError(f"{name} cannot be its own peer")
        self._flow_ids = flow_ids
        self._window = window
        self._poll_interval = poll_interval
        self._count_interval = count_interval
        self._log = log or NoLog()
        self._lock = threading.RLock()
        self._number = 0
        self._app: App | None = None
        self.snapshots: Snapshots | None = None
        self.drops: collections.Counter[str] = collections.Counter()
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._to_peer: dict[str, socket.socket] = {}

        with contextlib.ExitStack() as bound:   # closed again if a later bind fails
            self._listeners = {tuple(vip): bound.enter_context(self._listen(tuple(vip)))
                               for vip in vips}
            self._peer_listener = bound.enter_context(self._listen((dip, PEER_PORT)))
            self._oob = OobServer(mgmt or (dip, OOB_PORT), self._answer, self._drop)
            bound.pop_all()

    @staticmethod
    def _listen(address: Address) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as e:
            sock.close()
            raise OSError(f"cannot listen on TCP {address_text(address)}: "
                          f"{e.strerror or e}") from None
        sock.listen(128)
        return sock

    @property
    def peer_address(self) -> Address:
        return self._peer_listener.getsockname()

    @property
    def oob_address(self) -> Address:
        return self._oob.address

    # Life cycle.

    def _start_loops(self):
        for vip, listener in self._listeners.items():
            self._thread(self._accept_loop, listener, self._serve_client, name=f"vip {vip[1]}")
        self._thread(self._accept_loop, self._peer_listener, self._serve_peer, name="peers")
        if self.mode is Mode.POLLING:
            self._thread(self._poll_loop, name="poll")
        if self._counts_by_timer():
            self._thread(self._count_loop, name="counts")

    def _thread(self, target: Callable, *args, name: str):
        thread = threading.Thread(target=target, args=args, name=f"{self.name} {name}",
                                  daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self):
        if self._stopped.is_set():
            return
        self._stopped.set()
        for sock in (*self._listeners.values(), self._peer_listener):
            sock.shutdown(socket.SHUT_RDWR)   # wakes its accept loop
        with self._lock:
            for conn in (*self._connections, *self._to_peer.values()):
                _shutdown(conn)
        for thread in list(self._threads):
            thread.join(5)
        self._oob.stop()
        for sock in (*self._listeners.values(), self._peer_listener, *self._to_peer.values()):
            sock.close()

    def _accept_loop(self, listener: socket.socket, serve: Callable):
        while not self._stopped.is_set():
            try:
                conn, source = listener.accept()
            except OSError as e:
                if self._stopped.is_set():
                    return   # shut down by stop()
                # Out of descriptors, say: counted, and tried again after a pause.
                self._drop("accept failed", e, listener.getsockname())
                self._stopped.wait(0.1)
                continue
            with self._lock:
                self._connections.add(conn)
            try:
                self._thread(self._connection, conn, source, serve, name=address_text(source))
            except RuntimeError as e:   # no thread to spare: this connection only is refused
                with self._lock:
                    self._connections.discard(conn)
                conn.close()
                self._drop("accept failed", e, source)

    def _connection(self, conn: socket.socket, source: Address, serve: Callable):
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            serve(conn, source)
        except OSError:
            pass   # reset by the other end, or shut down by stop()
        except Exception as e:   # a bug: this connection ends, the others go on
            self._drop("internal error", e, source, trace=True)
        finally:
            with self._lock:
                self._connections.discard(conn)
            conn.close()

    def _poll_loop(self):
        while not self._stopped.wait(self._poll_interval):
            with self._lock:
                self._took(self.snapshots.poll())

    # Clients.

    def _serve_client(self, conn: socket.socket, client: Address):
        vip = conn.getsockname()
        frames = FrameReader()
        source = address_text(client)
        mark = self._marker(client, vip) if self.mode is Mode.BEAVER else None
        try:
            while data := conn.recv(65536):
                with self._lock:
                    if mark is not None and not mark():
                        return
                    for payload in frames.feed(data):
                        message = decode(payload)
                        self._log.recv(message["id"], source)
                        self._deliver(self._app.on_request, message,
                                      TcpClient(client, vip, message["id"], conn))
        except (FrameError, MessageError) as e:
            self._drop(e.reason, e, client)   # the stream is out of step: hang up
        finally:
            if self._flow_ids is not None:
                self._flow_ids.forget(client, vip)

    def _marker(self, client: Address, vip: Address) -> Callable[[], bool]:
        """The snapshot rule for the bytes of each read of client's connection
        (False: refused, hang up), made once for the connection.

        The kernel program records a packet's ID in the map before it lets
        the packet go on to TCP, so the ID read here, after the read, is at
        least the ID of every byte the read returned: a request that the SLB
        marked with a new ID is never handled before the state is recorded.

        The map may be newer than those bytes (packets that arrived after
        them), and the state is then recorded "early", before requests that
        were marked older.  That cut is still consistent: this process has
        received nothing after it that was sent after the snapshot (what is
        left was sent before it, by an out-group client), and every message
        it sends from now on carries the new ID, so its peers record their
        state before they handle any of them.

        The kernel raises the host's newest ID before the flow's, so newest,
        read after the bytes, is at least their ID too.  When it is the ID
        already recorded, no flow holds a newer one and the rule would do
        nothing: the flow is not looked up (a bpf() call), except at the
        first read, which checks that a MARK announced the flow."""
        flow_id = self._flow_ids.reader(client, vip)   # the flow's key, made once
        newest = self._flow_ids.newest
        found = False

        def mark() -> bool:
            nonlocal found
            current = self.snapshots.current_id
            if found and newest is not None and newest[0] == current:
                return True
            snapshot_id = flow_id()
            if snapshot_id is None:   # bytes that no decapsulated MARK announced: no ID to trust
                self._drop("no flow ID", LookupError(f"{address_text(client)} -> "
                                                     f"{address_text(vip)}"), client)
                return False
            found = True
            if snapshot_id != current and (taken := self.snapshots.mark(snapshot_id)):
                self._took(taken)
            return True

        return mark

    def reply(self, client: TcpClient, message: Message):
        """On the client's connection (from the VIP).  Sets "id" and "re"."""
        with self._lock:
            message["id"] = self._new_id()
            message["re"] = client.request_id
            self._log.send(message["id"], address_text(client.address))
            client.connection.sendall(frame(encode(message)))

    # Peers.

    def send(self, peer: str, message: Message):
        """To an in-group peer, stamped with this process's snapshot ID.  Sets "id"."""
        if peer not in self._peers:
            raise ValueError(f"{peer!r} is not a peer of {self.name}")
        with self._lock:
            self._send_app(peer, message)

    def _send_stamped(self, peer: str, kind: PeerKind, seq: int, body: bytes, message_id: str,
                      counted_from: int | None = None):
        stamp = self.snapshots.current_id if self.snapshots else 0
        data = stamp_frame(stamp, kind, seq, self._name, body, counted_from)
        self._log.send(message_id, peer, ctl=kind is PeerKind.COUNT)
        try:
            self._channel(peer).sendall(data)
        except OSError as e:
            # Lost: that channel's counts never match again, so no later
            # snapshot completes there (sound).  The next send reconnects.
            if peer in self._to_peer:
                self._to_peer.pop(peer).close()
            self._drop("peer unreachable", e, (self._peers[peer], PEER_PORT))

    def _channel(self, peer: str) -> socket.socket:
        """The connection to peer, opened on first use."""
        sock = self._to_peer.get(peer)
        if sock is None:
            sock = socket.create_connection((self._peers[peer], PEER_PORT), timeout=5,
                                            source_address=(self._dip, 0))
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._to_peer[peer] = sock
        return sock

    def _serve_peer(self, conn: socket.socket, source: Address):
        frames = FrameReader()
        try:
            while data := conn.recv(65536):
                for payload in frames.feed(data):
                    self._from_peer(payload, source)
        except (FrameError, WireError, DatagramError, MessageError) as e:
            self._drop(getattr(e, "reason", "bad Beaver header"), e, source)

    def _from_peer(self, payload: bytes, source: Address):
        header = BeaverHeader.unpack(payload)
        if header.kind is not Kind.STAMP:
            raise DatagramError("not a STAMP", f"a {header.kind.name} frame from a peer")
        peer, body = parse_peer(payload[BeaverHeader.SIZE:])
        self._peer_message(peer, header.snapshot_id, body, source)


def _shutdown(sock: socket.socket):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
