"""What both in-group runtimes (runtime.py over UDP, tcp_runtime.py over
TCP) do once their transport delivered a message: the snapshot rule on a
peer's stamp, the channel counts, delivery to the application, the COUNT
announcements of a local snapshot, and the controller's out-of-band answers.

A runtime mixes this in and provides `_send_peer(peer, kind, seq, message,
ctl)` and the attributes name, snapshots, drops, _peers, _lock, _log, _app
and _number.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from . import oob_answers
from .datagrams import Address, DatagramError, PeerHeader, PeerKind
from .messages import Message, MessageError, decode, message_id
from .snapshots import Taken

log = logging.getLogger(__name__)


class PeerHandling:
    def _peer_message(self, peer: PeerHeader, stamp: int, payload: bytes, source: Address):
        """A peer's APP or COUNT message, stamped with the sender's ID."""
        if self._peers.get(peer.sender) != source[0]:
            raise DatagramError("unknown peer", f"{peer.sender!r} from {source[0]} "
                                                "is not a peer at its address")
        message = decode(payload)
        if peer.kind is PeerKind.COUNT:
            first, sent_before = message.get("first"), message.get("sent_before")
            if not (type(first) is int and type(sent_before) is int):
                raise MessageError(f"COUNT without integer first/sent_before: {message}")
        with self._lock:
            if self.snapshots:
                self._took(self.snapshots.stamp(stamp))
            if peer.kind is PeerKind.COUNT:
                self._log.recv(message["id"], peer.sender, ctl=True)
                if self.snapshots:
                    self.snapshots.count_from(peer.sender, first, stamp, sent_before)
                return
            self._log.recv(message["id"], peer.sender)
            if self.snapshots:
                self.snapshots.received_from(peer.sender, stamp, peer.seq, message)
            self._deliver(self._app.on_peer, message, peer.sender)

    def _deliver(self, handler: Callable[[Message, Any], None], message: Message, source: Any):
        try:
            handler(message, source)
        except Exception:   # counted and logged: one bad message must not stop the process
            self.drops["app error"] += 1
            log.exception("%s: the application failed on %r", self.name, message)

    def _took(self, taken: Taken | None):
        """Logs a local snapshot just recorded and announces the channel counts."""
        if taken is None:
            return
        self._log.snapshot(taken.first, taken.last, taken.trigger)
        if self.snapshots.records_channels:
            for peer in self._peers:
                self._send_peer(peer, PeerKind.COUNT, 0,
                                {"first": taken.first, "sent_before": taken.sent_before[peer]},
                                ctl=True)

    def _new_id(self) -> str:
        self._number += 1
        return message_id(self.name, self._number)

    def _answer(self, message: dict[str, Any]) -> dict[str, Any]:
        return oob_answers.answer(message, self.name, self.snapshots, self._lock, self.drops,
                                  self._took)
