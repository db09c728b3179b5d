"""Raw-socket access to the host ends of veth pairs, for packet tests.

Like PTF's testutils: send a frame into a switch port, expect it on one port,
on any of several ports (a load balancer's choice), or on none.
"""
from __future__ import annotations

import select
import socket
import time
from typing import Callable, Iterable, Mapping

from scapy.layers.l2 import Ether
from scapy.packet import Packet

ETH_P_ALL = 0x0003
Match = Callable[[Packet], bool]


class Ports:
    def __init__(self, ifaces: Mapping[int, str]):
        self.sockets: dict[int, socket.socket] = {}
        for port, iface in ifaces.items():
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            s.bind((iface, 0))
            s.setblocking(False)
            self.sockets[port] = s

    def close(self):
        for s in self.sockets.values():
            s.close()

    def send(self, port: int, frame: Packet | bytes):
        self.sockets[port].send(bytes(frame))

    def drain(self):
        for s in self.sockets.values():
            while True:
                try:
                    s.recv(65535)
                except BlockingIOError:
                    break

    def _next(self, ports: Iterable[int], deadline: float):
        """The next (port, frame) on any of ports, or None at the deadline."""
        by_fd = {self.sockets[p].fileno(): p for p in ports}
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(list(by_fd), [], [], left)
            for fd in ready:
                port = by_fd[fd]
                try:
                    return port, Ether(self.sockets[port].recv(65535))
                except BlockingIOError:
                    continue
        return None

    def expect_any(self, ports: Iterable[int], match: Match = lambda p: True,
                   timeout: float = 2.0) -> tuple[int, Packet]:
        """The first frame matching on any of ports (others are skipped)."""
        ports = list(ports)
        deadline = time.monotonic() + timeout
        while (got := self._next(ports, deadline)) is not None:
            if match(got[1]):
                return got
        raise AssertionError(f"no matching frame on ports {ports} within {timeout} s")

    def expect(self, port: int, match: Match = lambda p: True,
               timeout: float = 2.0) -> Packet:
        return self.expect_any([port], match, timeout)[1]

    def expect_none(self, ports: Iterable[int], match: Match = lambda p: True,
                    timeout: float = 0.3):
        ports = list(ports)
        deadline = time.monotonic() + timeout
        while (got := self._next(ports, deadline)) is not None:
            if match(got[1]):
                raise AssertionError(f"unexpected frame on port {got[0]}: {got[1].summary()}")
