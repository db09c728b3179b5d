"""SLB packets crafted with scapy, for the in-group runtime's own tests (as
issue 4 asks); the real SLB, BMv2 in Mininet, is exercised by
tests/mininet/test_topology.py and tests/mininet/test_experiments.py.

It builds exactly what p4src/load_balancer.p4 sends a backend:
Beaver(MARK, origin=SLB id, snapshot_id)/the client's IPv4/UDP packet to the
VIP.  A *front* lets unmodified out-group processes go through it: the front
listens on an address standing for the VIP (the VIP:port itself is bound by
the backend's DSR socket on loopback) and forwards each datagram, with the
client's real address, to one backend.
"""
from __future__ import annotations

import socket
import threading

from scapy.layers.inet import IP, UDP

from beaver.p4src.wire import BEAVER_UDP_PORT, Kind

from tests.support.packets import Beaver

Address = tuple[str, int]

SLB_IDS = range(1, 10)   # the stand-in SLBs a test may start


def slb_ip(slb_id: int = 1) -> str:
    """The address stand-in SLB slb_id encapsulates from (in-group runtimes
    accept MARKs only from the SLB addresses they are given)."""
    if slb_id not in SLB_IDS:
        raise ValueError(f"stand-in SLB ids are {SLB_IDS.start}..{SLB_IDS.stop - 1}")
    return f"127.0.4.{30 + slb_id}"


def encapsulate(client: Address, vip: Address, payload: bytes, snapshot_id: int,
                slb_id: int = 1) -> bytes:
    return bytes(Beaver(kind=Kind.MARK, origin=slb_id, snapshot_id=snapshot_id) /
                 IP(src=client[0], dst=vip[0]) / UDP(sport=client[1], dport=vip[1]) / payload)


class LoopbackSlb:
    def __init__(self, slb_id: int = 1, snapshot_id: int = 0):
        self.slb_id = slb_id
        self.snapshot_id = snapshot_id     # the mark; a test moves it to "initiate" the SLB
        self.forwarded: list[int] = []     # the mark each forwarded packet carried
        self._out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._out.bind((slb_ip(slb_id), 0))
        self._fronts: list[tuple[socket.socket, threading.Thread]] = []
        self._stopping = False

    def forward(self, client: Address, vip: Address, payload: bytes, dip: str):
        self.forwarded.append(self.snapshot_id)
        self._out.sendto(encapsulate(client, vip, payload, self.snapshot_id, self.slb_id),
                         (dip, BEAVER_UDP_PORT))

    def front(self, listen: Address, vip: Address, dip: str) -> Address:
        """Forwards what arrives at listen as if it had been sent to vip."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(listen)
        thread = threading.Thread(target=self._serve, args=(sock, vip, dip), daemon=True)
        self._fronts.append((sock, thread))
        thread.start()
        return sock.getsockname()

    def _serve(self, sock: socket.socket, vip: Address, dip: str):
        while True:
            payload, client = sock.recvfrom(65535)
            if self._stopping:
                return
            self.forward(client, vip, payload, dip)

    def close(self):
        self._stopping = True
        for sock, thread in self._fronts:
            self._out.sendto(b"", sock.getsockname())
            thread.join()
            sock.close()
        self._out.close()
