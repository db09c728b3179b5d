"""control/p4runtime/packetio.py agrees with protobuf's own encoding of the stream
messages, both ways."""
import pytest
from p4.v1 import p4runtime_pb2

from beaver.control.p4runtime import packetio


@pytest.mark.parametrize("payload,metadata", [
    (bytes(40), [(1, b"\x01")]),
    (bytes(range(256)) * 3, [(1, b"\x02"), (2, b"\x00"), (300, b"\xff" * 6)]),
    (b"", []),
])
def test_packet_out_bytes_are_what_protobuf_writes(payload, metadata):
    ours = packetio.encode_packet_out(payload, packetio.encode_metadata(metadata))
    theirs = p4runtime_pb2.StreamMessageRequest()
    theirs.packet.payload = payload
    for mid, value in metadata:
        theirs.packet.metadata.add(metadata_id=mid, value=value)
    assert ours == theirs.SerializeToString()
    assert p4runtime_pb2.StreamMessageRequest.FromString(ours) == theirs


@pytest.mark.parametrize("payload,metadata", [
    (bytes(42), [(1, b"\x01"), (2, b"\x00")]),
    (bytes(range(200)) * 2, [(2, b"\x04"), (1, b"\x02"), (70000, b"abc")]),
])
def test_packet_in_reads_what_protobuf_writes(payload, metadata):
    message = p4runtime_pb2.StreamMessageResponse()
    message.packet.payload = payload
    for mid, value in metadata:
        message.packet.metadata.add(metadata_id=mid, value=value)
    got = packetio.decode_packet_in(message.SerializeToString())
    assert got == packetio.PacketIn(payload, tuple(metadata))


def test_other_stream_messages_are_left_to_protobuf():
    message = p4runtime_pb2.StreamMessageResponse()
    message.arbitration.device_id = 1
    message.arbitration.status.code = 6
    assert packetio.decode_packet_in(message.SerializeToString()) is None
