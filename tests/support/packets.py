"""Scapy layers for the Beaver header, and packet builders for the tests."""
from scapy.fields import BitEnumField, BitField, ByteField, IntField
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Packet, bind_layers

from beaver.p4src.wire import BEAVER_UDP_PORT, BEAVER_VERSION, Kind


class Beaver(Packet):
    name = "Beaver"
    fields_desc = [
        BitField("version", BEAVER_VERSION, 4),
        BitEnumField("kind", Kind.MARK, 4, {k.value: k.name for k in Kind}),
        ByteField("origin", 0),
        IntField("snapshot_id", 0),
    ]

    def guess_payload_class(self, payload):
        return IP if self.kind == Kind.MARK else Packet.guess_payload_class(self, payload)


bind_layers(UDP, Beaver, dport=BEAVER_UDP_PORT)


def stamp(src: str, dst: str, snapshot_id: int, payload: bytes = b"peer",
          src_mac="00:00:00:00:02:01", dst_mac="00:00:00:00:00:fe") -> Packet:
    """An in-group message carrying its sender's snapshot ID."""
    return (Ether(src=src_mac, dst=dst_mac) / IP(src=src, dst=dst) /
            UDP(sport=40000, dport=BEAVER_UDP_PORT) /
            Beaver(kind=Kind.STAMP, snapshot_id=snapshot_id) / payload)
