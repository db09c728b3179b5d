"""What arrives at an in-group process's UDP port 4790, after the Beaver header.

* MARK (from an SLB): the client's original IPv4/UDP packet to the VIP.  Read
  strictly: anything that is not one whole, unfragmented IPv4/UDP packet is
  refused.  The inner IPv4 checksum is not checked: the SLB already dropped
  bad checksums, and the outer UDP checksum covers these bytes in transit.
* STAMP (from an in-group peer): the runtime's peer header, then a JSON body:

      kind (1 byte) | channel sequence (4 bytes) | sender length (1) | sender
      [| counted_from (4 bytes): kind APP_COUNTED only]

  kind APP carries an application message; kind COUNT tells the receiver how
  many APP messages the sender had sent it before a snapshot; kind
  APP_COUNTED is an APP message that tells it too, in place of a COUNT: the
  sender had sent seq - 1 before each of its snapshots counted_from .. the
  stamp.
"""
from __future__ import annotations

import enum
import socket
import struct
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as json_string

PROTO_UDP = 17
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
_PEER = struct.Struct("!BIB")
_COUNTED_FROM = struct.Struct("!I")
MAX_NAME = 255


class DatagramError(ValueError):
    """A datagram that does not hold what its Beaver header announced.
    `reason` is a short fixed key for the drop counters."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason


Address = tuple[str, int]


def address_text(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


@dataclass(frozen=True)
class Inbound:
    """A client's packet to a VIP, as the SLB forwarded it."""
    client: Address
    vip: Address
    payload: bytes


def parse_inner(data: bytes) -> Inbound:
    """The original IPv4/UDP packet that follows a MARK header."""
    if len(data) < _IPV4.size:
        raise DatagramError("truncated", f"inner IPv4 header needs 20 bytes, got {len(data)}")
    (version_ihl, _tos, total_len, _ident, flags_frag, _ttl, proto, _checksum,
     src, dst) = _IPV4.unpack_from(data)
    version, ihl = version_ihl >> 4, version_ihl & 0xF
    if version != 4:
        raise DatagramError("bad inner IPv4", f"version {version}")
    if ihl < 5:
        raise DatagramError("bad inner IPv4", f"IHL {ihl}")
    if total_len != len(data):
        raise DatagramError("bad length", f"inner IPv4 total length {total_len}, "
                                          f"{len(data)} bytes present")
    if flags_frag & 0x3FFF:
        raise DatagramError("fragment", "inner IPv4 packet is a fragment")
    if proto != PROTO_UDP:
        raise DatagramError("not UDP", f"inner IPv4 protocol {proto}")
    header_len = ihl * 4
    if total_len < header_len + _UDP.size:
        raise DatagramError("truncated", f"no room for a UDP header after {header_len} "
                                         "bytes of IPv4 header")
    sport, dport, udp_len, _ = _UDP.unpack_from(data, header_len)
    if udp_len != total_len - header_len:
        raise DatagramError("bad length", f"inner UDP length {udp_len}, "
                                          f"{total_len - header_len} bytes present")
    return Inbound((socket.inet_ntoa(src), sport), (socket.inet_ntoa(dst), dport),
                   data[header_len + _UDP.size:])


class PeerKind(enum.IntEnum):
    APP = 1           # an application message
    COUNT = 2         # how many APP messages were sent on this channel before a snapshot
    APP_COUNTED = 3   # an APP message that also counts, as a COUNT would


@dataclass(frozen=True)
class PeerHeader:
    kind: PeerKind
    seq: int          # APP, APP_COUNTED: the message's position on its channel, from 1; COUNT: 0
    sender: str
    counted_from: int | None = None   # APP_COUNTED: the first snapshot ID it counts for


def count_body(first: int, sent_before: int, message_id: str) -> bytes:
    """A COUNT's JSON body, byte for byte what messages.encode writes for
    {"first": first, "sent_before": sent_before, "id": message_id}: formatted
    directly, as it goes to every peer on every snapshot."""
    return (f'{{"first":{first},"sent_before":{sent_before},'
            f'"id":{json_string(message_id)}}}').encode()


def pack_peer(kind: PeerKind, seq: int, sender: bytes, counted_from: int | None = None) -> bytes:
    """sender: the sender's name, already encoded (checked by peer_name);
    counted_from: APP_COUNTED's, and only its."""
    if (kind is PeerKind.APP_COUNTED) != (counted_from is not None):
        raise ValueError("counted_from goes with kind APP_COUNTED, and only with it")
    header = _PEER.pack(kind, seq, len(sender)) + sender
    return header if counted_from is None else header + _COUNTED_FROM.pack(counted_from)


def peer_name(name: str) -> bytes:
    encoded = name.encode()
    if not 0 < len(encoded) <= MAX_NAME:
        raise ValueError(f"process name {name!r} must be 1 to {MAX_NAME} bytes")
    return encoded


def parse_peer(data: bytes) -> tuple[PeerHeader, bytes]:
    """The peer header after a STAMP, and the body that follows it."""
    if len(data) < _PEER.size:
        raise DatagramError("truncated", f"peer header needs {_PEER.size} bytes, got {len(data)}")
    kind, seq, name_len = _PEER.unpack_from(data)
    try:
        kind = PeerKind(kind)
    except ValueError:
        raise DatagramError("bad peer header", f"kind {kind}") from None
    end = _PEER.size + name_len
    if name_len == 0 or len(data) < end:
        raise DatagramError("truncated", f"sender name of {name_len} bytes")
    try:
        sender = data[_PEER.size:end].decode()
    except UnicodeDecodeError:
        raise DatagramError("bad peer header", "sender name is not UTF-8") from None
    if kind is not PeerKind.APP_COUNTED:
        return PeerHeader(kind, seq, sender), data[end:]
    if len(data) < end + _COUNTED_FROM.size:
        raise DatagramError("truncated", "APP_COUNTED without its first snapshot ID")
    if seq == 0:   # its count is seq - 1
        raise DatagramError("bad peer header", "APP_COUNTED at channel position 0")
    counted_from, = _COUNTED_FROM.unpack_from(data, end)
    return PeerHeader(kind, seq, sender, counted_from), data[end + _COUNTED_FROM.size:]
