"""An out-group process's socket: plain JSON over UDP, no Beaver at all.

Each message gets a unique id and the sender's name ("client"); every send
and receive goes to the ground-truth log, so the checker sees the hidden
causality an out-group process carries between in-group processes.
"""
from __future__ import annotations

import logging
import socket
import threading
import time

from beaver.traffic.runtime.datagrams import Address, address_text
from beaver.traffic.runtime.eventlog import NoLog
from beaver.traffic.messages import Message, MessageError, decode, encode, message_id

log = logging.getLogger(__name__)


class Endpoint:
    def __init__(self, name: str, bind: Address = ("0.0.0.0", 0), log=None):
        self.name = name
        self._log = log or NoLog()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(bind)
        self._number = 0
        self._lock = threading.Lock()
        self.bad = 0          # datagrams that were not messages
        self.stale = 0        # replies that came after call() gave up on them

    @property
    def address(self) -> Address:
        return self._sock.getsockname()

    def send(self, to: Address, message: Message) -> str:
        """Sets message["id"] and ["client"]; returns the id."""
        with self._lock:
            self._number += 1
            message["id"] = message_id(self.name, self._number)
            message["client"] = self.name
            self._log.send(message["id"], address_text(to))
            self._sock.sendto(encode(message), to)
        return message["id"]

    def receive(self, timeout: float | None) -> tuple[Message, Address] | None:
        """The next message (logged), or None when timeout passes first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self._sock.settimeout(left)
            try:
                data, source = self._sock.recvfrom(65535)
            except socket.timeout:
                return None
            try:
                message = decode(data)
            except MessageError as e:
                self.bad += 1
                log.warning("%s: dropped a datagram from %s: %s", self.name,
                            address_text(source), e)
                continue
            self._log.recv(message["id"], address_text(source))
            return message, source

    def call(self, to: Address, message: Message, timeout: float) -> Message | None:
        """Sends a request and waits for its reply (None on timeout)."""
        return self.request(to, message, timeout)[1]

    def request(self, to: Address, message: Message,
                timeout: float) -> tuple[str, Message | None]:
        """As call, also returning the request's id."""
        request_id = self.send(to, message)
        deadline = time.monotonic() + timeout
        while (got := self.receive(deadline - time.monotonic())) is not None:
            if got[0].get("re") == request_id:
                return request_id, got[0]
            self.stale += 1
        return request_id, None

    def close(self):
        self._sock.close()
