"""P4Runtime stream packets (PacketOut, PacketIn) encoded by hand.

The protobuf runtime available here is the pure-Python one (protobuf 3.20,
which p4runtime's generated code needs, ships no C extension for this
Python), and building, serializing and parsing these messages took about
40 % of the controller's CPU in a profile of a snapshot run.  They are
small and fixed, so the session writes and reads their wire format
directly; every other stream message still goes through protobuf.

    StreamMessageRequest  { PacketOut packet = 2; ... }
    StreamMessageResponse { PacketIn  packet = 2; ... }
    PacketOut / PacketIn  { bytes payload = 1; repeated PacketMetadata metadata = 2; }
    PacketMetadata        { uint32 metadata_id = 1; bytes value = 2; }
"""
from __future__ import annotations

from typing import NamedTuple

_LEN = 2            # wire type: length-delimited
_VARINT = 0
PACKET = 2          # field number of `packet` in both stream messages
PAYLOAD, METADATA = 1, 2
METADATA_ID, VALUE = 1, 2


class PacketIn(NamedTuple):
    payload: bytes
    metadata: tuple[tuple[int, bytes], ...]   # (metadata_id, value), in wire order


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | _LEN) + _varint(len(data)) + data


def encode_metadata(pairs: list[tuple[int, bytes]]) -> bytes:
    """The metadata fields of a PacketOut, to be reused for many packets."""
    return b"".join(_field(METADATA, _varint(METADATA_ID << 3 | _VARINT) + _varint(mid) +
                           _field(VALUE, value)) for mid, value in pairs)


def encode_packet_out(payload: bytes, metadata: bytes) -> bytes:
    """A serialized StreamMessageRequest carrying one PacketOut."""
    return _field(PACKET, (_field(PAYLOAD, payload) if payload else b"") + metadata)


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _fields(data: bytes, start: int, end: int):
    """(field number, wire type, value) of a message; a length-delimited
    value is the (start, end) of its bytes."""
    i = start
    while i < end:
        key, i = _read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, i = _read_varint(data, i)
        elif wire == _LEN:
            length, i = _read_varint(data, i)
            value = (i, i + length)
            i += length
        else:
            raise ValueError(f"unexpected wire type {wire}")
        yield number, wire, value


def decode_packet_in(data: bytes) -> PacketIn | None:
    """The PacketIn of a serialized StreamMessageResponse, or None if the
    message is something else (arbitration, error, ...)."""
    fields = list(_fields(data, 0, len(data)))
    if len(fields) != 1 or fields[0][:2] != (PACKET, _LEN):
        return None
    payload, metadata = b"", []
    for number, wire, value in _fields(data, *fields[0][2]):
        if number == PAYLOAD and wire == _LEN:
            payload = data[value[0]:value[1]]
        elif number == METADATA and wire == _LEN:
            mid, mvalue = 0, b""
            for n, w, v in _fields(data, *value):
                if n == METADATA_ID and w == _VARINT:
                    mid = v
                elif n == VALUE and w == _LEN:
                    mvalue = data[v[0]:v[1]]
            metadata.append((mid, mvalue))
    return PacketIn(payload, tuple(metadata))
