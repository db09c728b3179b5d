"""The process side of the out-of-band protocol (traffic/oob/protocol.py): a TCP server
on the management address that answers each of the controller's requests.

Nothing a connection sends stops the server: a malformed frame is answered
with an error, counted ("bad OOB request") and the connection closed; an
error no check foresaw is counted ("OOB internal error") and logged with its
traceback.  Either way the server goes on serving other connections."""
from __future__ import annotations

import socketserver
import threading
from typing import Any, Callable

from beaver.traffic.oob import protocol as oob

Answer = Callable[[dict[str, Any]], dict[str, Any]]
# Counts and logs what was refused: (reason, error, source, trace: with the traceback).
Drop = Callable[..., None]


def error(text: str) -> dict[str, Any]:
    return {"v": oob.VERSION, "op": "error", "error": text}


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            self._serve()
        except OSError:
            return   # the controller hung up, or the connection broke
        except Exception as e:   # a bug must not go unseen, nor stop the server
            self.server.drop("OOB internal error", e, self.client_address, trace=True)

    def _serve(self):
        while True:
            try:
                message = oob.receive(self.request)
            except oob.ProtocolError as e:
                # A bad frame may leave the stream out of step: answer, then hang up.
                self.server.drop("bad OOB request", e, self.client_address)
                oob.send(self.request, error(str(e)))
                return
            self.request.sendall(self._answer(message))

    def _answer(self, message: dict[str, Any]) -> bytes:
        """The answer to message, framed: an error if it is refused, too long
        or fails."""
        try:
            return oob.encode(self.server.answer(message))
        except oob.ProtocolError as e:
            return oob.encode(error(str(e)))
        except Exception as e:   # a bug: answered, counted and logged; the connection goes on
            self.server.drop("OOB internal error", e, self.client_address, trace=True)
            return oob.encode(error(f"internal error: {e}"))


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address, answer: Answer, drop: Drop):
        super().__init__(address, _Handler)
        self.answer = answer
        self.drop = drop


class OobServer:
    def __init__(self, address: tuple[str, int], answer: Answer, drop: Drop):
        try:
            self._server = _Server(address, answer, drop)
        except OSError as e:
            raise OSError(f"cannot listen on TCP {address[0]}:{address[1]} (out of "
                          f"band): {e.strerror or e}") from None
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
