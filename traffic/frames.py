"""Length-prefixed frames on a TCP stream: a 4-byte big-endian length, then
that many bytes.

A client's request and the service's reply are one frame each, a JSON
message (messages.py).  Between in-group processes, a frame holds exactly
what a UDP STAMP datagram holds (the Beaver header with the sender's
snapshot ID, the peer header with kind, channel sequence and sender, then
the JSON body), so both transports share one parser (datagrams.py).
"""
from __future__ import annotations

import struct

from beaver.p4src.wire import BEAVER_VERSION, BeaverHeader, Kind

from beaver.traffic.runtime.datagrams import PeerKind, pack_peer

_LENGTH = struct.Struct("!I")
MAX_FRAME = 1 << 20
_STAMP_BYTE = (BEAVER_VERSION << 4) | Kind.STAMP


class FrameError(ValueError):
    reason = "bad frame"


def frame(payload: bytes) -> bytes:
    return _LENGTH.pack(len(payload)) + payload


def stamp_frame(snapshot_id: int, kind: PeerKind, seq: int, sender: bytes, body: bytes,
                counted_from: int | None = None) -> bytes:
    """A peer message stamped with the sender's snapshot ID."""
    return frame(BeaverHeader.FORMAT.pack(_STAMP_BYTE, 0, snapshot_id)
                 + pack_peer(kind, seq, sender, counted_from) + body)


class FrameReader:
    """Cuts the bytes read from a stream into whole frames."""

    def __init__(self):
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """The frames completed by data (none, one or many)."""
        self._buffer += data
        frames = []
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if length > MAX_FRAME:
                raise FrameError(f"a frame of {length} bytes exceeds {MAX_FRAME}")
            end = _LENGTH.size + length
            if len(self._buffer) < end:
                break
            frames.append(bytes(self._buffer[_LENGTH.size:end]))
            del self._buffer[:end]
        return frames
