"""An out-group process's TCP connection to a VIP: length-prefixed JSON
frames (frames.py), no Beaver at all.

Like outgroup.Endpoint, it names each request "<name>:<n>" and logs every
send and receive, so the checker sees what the client carries.  A request
that times out closes the connection (a late reply would come out of step);
the next call opens a new one.
"""
from __future__ import annotations

import itertools
import socket
import time
from typing import Iterator

from beaver.traffic.runtime.datagrams import Address, address_text
from beaver.traffic.runtime.eventlog import NoLog
from beaver.traffic.frames import FrameReader, frame
from beaver.traffic.messages import Message, MessageError, decode, encode, message_id


class TcpEndpoint:
    def __init__(self, name: str, target: Address, bind: str | Address = "0.0.0.0", log=None,
                 numbers: Iterator[int] | None = None):
        """bind: an ip, or (ip, port) for the first connection (a later one
        takes any port: the first one's may still be in TIME_WAIT).
        numbers: shared by the endpoints of one process, so its ids stay unique."""
        self.name = name
        self.target = target
        self._bind = bind if isinstance(bind, tuple) else (bind, 0)
        self._log = log or NoLog()
        self._numbers = numbers or itertools.count(1)
        self._sock: socket.socket | None = None
        self._frames = FrameReader()
        self._pending: list[bytes] = []
        self.connections = 0

    def _connect(self, timeout: float) -> socket.socket:
        sock = socket.create_connection(self.target, timeout, self._bind)
        self._bind = (self._bind[0], 0)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock, self._frames, self._pending = sock, FrameReader(), []
        self.connections += 1
        return sock

    def call(self, message: Message, timeout: float) -> Message | None:
        """Sends a request, waits for its reply (None on timeout or a lost connection).
        Sets message["id"] and ["client"]."""
        deadline = time.monotonic() + timeout
        try:
            sock = self._sock or self._connect(timeout)
            message["id"] = message_id(self.name, next(self._numbers))
            message["client"] = self.name
            self._log.send(message["id"], address_text(self.target))
            sock.sendall(frame(encode(message)))
            while True:
                while self._pending:
                    reply = decode(self._pending.pop(0))
                    self._log.recv(reply["id"], address_text(self.target))
                    if reply.get("re") == message["id"]:
                        return reply
                sock.settimeout(max(0.001, deadline - time.monotonic()))
                data = sock.recv(65536)
                if not data:
                    raise ConnectionError("closed by the service")
                self._pending += self._frames.feed(data)
        except (OSError, MessageError):
            self.close()
            return None

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None
