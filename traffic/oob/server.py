"""The process side of the out-of-band protocol (traffic/oob/protocol.py): a TCP server
on the management address that answers each of the controller's requests."""
from __future__ import annotations

import logging
import socketserver
import threading
from typing import Any, Callable

from beaver.traffic.oob import protocol as oob

log = logging.getLogger(__name__)

Answer = Callable[[dict[str, Any]], dict[str, Any]]


def error(text: str) -> dict[str, Any]:
    return {"v": oob.VERSION, "op": "error", "error": text}


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            try:
                message = oob.receive(self.request)
            except ConnectionError:
                return
            except oob.ProtocolError as e:
                # A bad frame may leave the stream out of step: answer, then hang up.
                log.warning("OOB %s: %s; closing the connection", self.client_address, e)
                oob.send(self.request, error(str(e)))
                return
            answer = self.server.answer_safely(message)
            try:
                frame = oob.encode(answer)
            except oob.ProtocolError as e:   # too long: say so rather than hang up
                frame = oob.encode(error(f"answer to {message.get('op')!r}: {e}"))
            self.request.sendall(frame)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address, answer: Answer):
        super().__init__(address, _Handler)
        self.answer = answer

    def answer_safely(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.answer(message)
        except oob.ProtocolError as e:
            return error(str(e))
        except Exception as e:   # a bug must not kill the connection unseen
            log.exception("OOB request %r failed", message)
            return error(f"internal error: {e}")


class OobServer:
    def __init__(self, address: tuple[str, int], answer: Answer):
        self._server = _Server(address, answer)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="oob", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address

    def start(self):
        self._thread.start()

    def stop(self):
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()
