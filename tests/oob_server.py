"""A minimal in-group process for the out-of-band protocol (control/oob.py),
until the real runtime (traffic/) takes its place in these tests.

It holds an ID and a counter as local state; "snapshot N" records the state
if N is newer, "report N" answers what was recorded.  `channels` gives each
report's channel state, so tests can make channels whole or not.
"""
from __future__ import annotations

import socket
import threading
from typing import Callable

from beaver.control import oob
from beaver.control.oob import ChannelState, Report
from beaver.p4src import ids


class OobProcess:
    def __init__(self, name: str,
                 channels: Callable[[int, int], dict[str, ChannelState]] = lambda n, asked: {}):
        self.name = name
        self.channels = channels          # (snapshot ID, times asked) -> channel state
        self.current = 0
        self.counter = 0
        self.taken: dict[int, int] = {}   # snapshot ID -> counter at the snapshot
        self.asked: dict[int, int] = {}
        self.requests: list[dict] = []
        self.answer = True                # False: read requests, never answer
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        with conn:
            while True:
                try:
                    message = oob.receive(conn)
                except (ConnectionError, OSError):
                    return
                except oob.ProtocolError as e:
                    oob.send(conn, {"v": oob.VERSION, "op": "error", "error": str(e)})
                    continue
                self.requests.append(message)
                if self.answer:
                    oob.send(conn, self._handle(message))

    def _handle(self, message: dict) -> dict:
        n = message.get("id")
        if message.get("op") == "snapshot" and ids.is_newer(n, self.current):
            self.current = n
            self.taken[n] = self.counter
        if message.get("op") not in ("snapshot", "report"):
            return {"v": oob.VERSION, "op": "error", "error": "unknown op"}
        self.counter += 1
        self.asked[n] = self.asked.get(n, 0) + 1
        return Report(self.name, n, n in self.taken, "oob" if n in self.taken else "",
                      local_state={"counter": self.taken.get(n)},
                      channels=self.channels(n, self.asked[n]), current_id=self.current,
                      finished_id=n).to_message()

    def close(self):
        self.server.close()
