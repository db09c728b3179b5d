"""The in-group runtime: makes an application process a Beaver participant.

    runtime = Runtime("kv1", dip="10.0.2.1", vips=[("10.10.0.1", 7000)],
                      slbs=["10.0.0.11"], peers={"kv2": "10.0.2.2"},
                      mode=Mode.BEAVER, log=EventLog(...))
    runtime.serve(app)      # app.on_request, app.on_peer, app.local_state
    ...                     # inside the handlers: runtime.reply / send / call_out
    runtime.stop()

It binds UDP DIP:4790, where the SLBs' encapsulated requests (MARK) and the
peers' messages (STAMP) arrive; answers clients by Direct Server Return from
a socket bound to the VIP:port the client addressed; and serves the
controller's out-of-band requests on TCP mgmt:4791.

A MARK is accepted only from a configured SLB address, as a STAMP only from
its peer's: anyone else could forge a request with a snapshot ID of its
choosing.

Every handler runs under one lock, and so does every snapshot: a local state
is always recorded between two handlers, never in the middle of one.
Malformed or unexpected datagrams are counted in `drops` by reason (also in
the OOB status answer and the process's exit summary), logged, and never
touch the snapshot state.  Nothing that arrives stops the receive loop: an
error no check foresaw is counted too ("internal error"), and logged with
its traceback and the datagram's source.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Protocol

from beaver.traffic.oob.protocol import OOB_PORT
from beaver.p4src.wire import (BEAVER_UDP_PORT, BEAVER_VERSION, RING_SIZE, BeaverHeader,
                               Kind, WireError)

from beaver.traffic.runtime.datagrams import (Address, DatagramError, PeerKind, address_text, pack_peer, parse_inner,
                        parse_peer, peer_name)
from beaver.traffic.runtime.eventlog import NoLog
from beaver.traffic.messages import Message, MessageError, decode, encode
from beaver.traffic.oob.server import OobServer
from beaver.traffic.runtime.peering import COUNT_INTERVAL, PeerHandling
from beaver.traffic.runtime.snapshots import Mode, Snapshots

log = logging.getLogger(__name__)

_STAMP_BYTE = (BEAVER_VERSION << 4) | Kind.STAMP


@dataclass(frozen=True)
class Client:
    """Who sent a request, and to which VIP:port: the reply goes back from there."""
    address: Address
    vip: Address
    request_id: str

    def to_json(self) -> dict[str, Any]:
        """For handing the reply to another in-group process."""
        return {"address": list(self.address), "vip": list(self.vip), "request": self.request_id}

    @classmethod
    def from_json(cls, data: Any) -> "Client":
        try:
            (ip, port), (vip, vport) = data["address"], data["vip"]
            if not (isinstance(data["request"], str) and isinstance(port, int)
                    and isinstance(vport, int)):
                raise TypeError("request must be a string, ports integers")
            return cls((str(ip), port), (str(vip), vport), data["request"])
        except (KeyError, TypeError, ValueError) as e:
            raise MessageError(f"bad client record {data!r}: {e}") from None


class App(Protocol):
    def on_request(self, message: Message, client: Client) -> None:
        """A client's request, delivered after the snapshot rule."""

    def on_peer(self, message: Message, sender: str) -> None:
        """An in-group peer's message, delivered after the snapshot rule."""

    def local_state(self) -> Any:
        """A JSON-able copy of the state: the runtime keeps it as returned."""


class Runtime(PeerHandling):
    def __init__(self, name: str, dip: str, *, vips: Iterable[Address] = (),
                 slbs: Iterable[str] = (), peers: Mapping[str, str] | None = None,
                 mode: Mode = Mode.BEAVER,
                 mgmt: Address | None = None, poll_interval: float | None = None,
                 log=None, window: int = RING_SIZE, count_interval: float = COUNT_INTERVAL):
        """slbs: the addresses the SLBs encapsulate from; MARKs from anywhere else are dropped.
        peers: name -> data address of every in-group process this one talks to.
        mgmt: where the controller reaches the OOB server (default dip:4791).
        poll_interval: seconds between snapshots in Mode.POLLING.
        count_interval: seconds the count of local snapshots waits at most for
        a message to a peer to carry it, before a COUNT does (0: a COUNT a
        local snapshot; peering.py)."""
        if mode is Mode.POLLING and not poll_interval:
            raise ValueError("Mode.POLLING needs a poll_interval")
        vips = [tuple(vip) for vip in vips]
        self._slbs = frozenset(slbs)
        if vips and not self._slbs:
            raise ValueError(f"{name} serves VIPs but knows no SLB address to accept them from")
        self.name = name
        self.mode = mode
        self._name = peer_name(name)
        self._peers = dict(peers or {})
        if name in self._peers:
            raise ValueError(f"{name} cannot be its own peer")
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

        with contextlib.ExitStack() as bound:   # closed again if a later bind fails
            self._sock = bound.enter_context(self._bind((dip, BEAVER_UDP_PORT)))
            self._dsr = {vip: bound.enter_context(self._bind(vip, shared=True)) for vip in vips}
            self._oob = OobServer(mgmt or (dip, OOB_PORT), self._answer, self._drop)
            bound.pop_all()

    @staticmethod
    def _bind(address: Address, shared: bool = False) -> socket.socket:
        """shared: for DSR sockets, which only send, so that the backends of one
        VIP may also share a host (each has the VIP on its own lo on Mininet)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            sock.bind(address)
        except OSError as e:
            sock.close()
            raise OSError(f"cannot bind UDP {address_text(address)}: "
                          f"{e.strerror or e}") from None
        return sock

    @property
    def data_address(self) -> Address:
        return self._sock.getsockname()

    @property
    def oob_address(self) -> Address:
        return self._oob.address

    # Life cycle.

    def _start_loops(self):
        self._threads.append(threading.Thread(target=self._receive_loop, name=f"{self.name}-rx",
                                              daemon=True))
        if self.mode is Mode.POLLING:
            self._threads.append(threading.Thread(target=self._poll_loop,
                                                  name=f"{self.name}-poll", daemon=True))
        if self._counts_by_timer():
            self._threads.append(threading.Thread(target=self._count_loop,
                                                  name=f"{self.name}-counts", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self):
        if self._stopped.is_set():
            return
        self._stopped.set()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as wake:
            wake.sendto(b"", self.data_address)   # unblocks the receive loop
        for thread in self._threads:
            thread.join()
        self._oob.stop()
        for sock in (self._sock, *self._dsr.values()):
            sock.close()

    def _receive_loop(self):
        while True:
            try:
                data, source = self._sock.recvfrom(65535)
            except OSError as e:
                if self._stopped.is_set():
                    return
                self._drop("receive failed", e, self.data_address)
                continue
            if self._stopped.is_set():
                return
            self._handle(data, source)

    def _poll_loop(self):
        while not self._stopped.wait(self._poll_interval):
            self.poll()

    def poll(self):
        """The polling baseline's timer tick (also callable directly)."""
        with self._lock:
            self._took(self.snapshots.poll())

    # The application's API.

    def send(self, peer: str, message: Message):
        """To an in-group peer, stamped with this process's snapshot ID.
        Sets message["id"]."""
        if peer not in self._peers:
            raise ValueError(f"{peer!r} is not a peer of {self.name}")
        with self._lock:
            self._send_app(peer, message)

    def reply(self, client: Client, message: Message):
        """To a client, by DSR from the VIP:port it addressed.  Sets "id" and "re"."""
        sock = self._dsr.get(client.vip)
        if sock is None:
            raise ValueError(f"{self.name} does not serve VIP {address_text(client.vip)}")
        with self._lock:
            message["id"] = self._new_id()
            message["re"] = client.request_id
            self._log.send(message["id"], address_text(client.address))
            sock.sendto(encode(message), client.address)

    def call_out(self, address: Address, message: Message):
        """To an out-group process, which knows nothing of Beaver.  Sets "id"."""
        with self._lock:
            message["id"] = self._new_id()
            self._log.send(message["id"], address_text(address))
            self._sock.sendto(encode(message), address)

    # Receiving.

    def _handle(self, data: bytes, source: Address):
        try:
            header = BeaverHeader.unpack(data)
            body = data[BeaverHeader.SIZE:]
            if header.kind is Kind.MARK:
                if source[0] not in self._slbs:
                    raise DatagramError("not from an SLB", "a MARK from an address that is "
                                                           "no configured SLB")
                self._from_slb(header.snapshot_id, body)
            else:
                self._from_peer(header.snapshot_id, body, source)
        except WireError as e:
            self._drop("bad Beaver header", e, source)
        except (DatagramError, MessageError) as e:
            self._drop(e.reason, e, source)
        except Exception as e:   # a bug: one datagram must not stop the receive loop
            self._drop("internal error", e, source, trace=True)

    def _from_slb(self, mark: int, body: bytes):
        inbound = parse_inner(body)
        if inbound.vip not in self._dsr:
            raise DatagramError("unknown VIP", f"{address_text(inbound.vip)} is not served here")
        message = decode(inbound.payload)
        client = Client(inbound.client, inbound.vip, message["id"])
        with self._lock:
            if self.snapshots and (taken := self.snapshots.mark(mark)):
                self._took(taken)
            self._log.recv(message["id"], address_text(inbound.client))
            self._deliver(self._app.on_request, message, client)

    def _from_peer(self, stamp: int, body: bytes, source: Address):
        header, payload = parse_peer(body)
        self._peer_message(header, stamp, payload, source)

    # Snapshots.

    def _send_stamped(self, peer: str, kind: PeerKind, seq: int, body: bytes, message_id: str,
                      counted_from: int | None = None):
        stamp = self.snapshots.current_id if self.snapshots else 0
        datagram = (BeaverHeader.FORMAT.pack(_STAMP_BYTE, 0, stamp)
                    + pack_peer(kind, seq, self._name, counted_from) + body)
        self._log.send(message_id, peer, ctl=kind is PeerKind.COUNT)
        self._sock.sendto(datagram, (self._peers[peer], BEAVER_UDP_PORT))
