"""Fuzzing the wire formats (issue 25): the Beaver header, the client packet
a MARK carries, the peer header a STAMP carries, TCP frames, and the control
plane's bodies.  Whatever the bytes, a reader returns what they hold or
raises its module's own error, with a reason for the drop counters."""
from __future__ import annotations

import struct

from hypothesis import given, strategies as st

from beaver.p4src.wire import (BEAVER_VERSION, Batch, BeaverHeader, ControlBody, Kind, Probe,
                               Record, WireError)
from beaver.traffic.frames import MAX_FRAME, FrameError, FrameReader, frame
from beaver.traffic.runtime.datagrams import (DatagramError, PeerKind, pack_peer, parse_inner,
                                              parse_peer)

from tests.support.fuzz import client_packets, fuzz

DATAGRAM_REASONS = {"truncated", "bad inner IPv4", "bad length", "fragment", "not UDP",
                    "bad peer header"}


@st.composite
def beaver_headers(draw) -> bytes:
    """Mostly well-formed headers (any kind, origin, ID), some of other versions."""
    version = draw(st.sampled_from([BEAVER_VERSION, BEAVER_VERSION, 0, 2, 15]))
    kind = draw(st.integers(0, 15))
    return (struct.pack("!BBI", (version << 4) | kind, draw(st.integers(0, 255)),
                        draw(st.integers(0, 2**32 - 1)))
            + draw(st.binary(max_size=8)))


@fuzz
@given(beaver_headers() | st.binary(max_size=12))
def test_the_beaver_header_is_read_or_refused_with_a_wire_error(data):
    try:
        header = BeaverHeader.unpack(data)
    except WireError:
        valid = (len(data) >= 6 and data[0] >> 4 == BEAVER_VERSION
                 and data[0] & 0xF in (Kind.MARK, Kind.STAMP))
        assert not valid, "a valid header refused"
        return
    assert header.pack() == data[:BeaverHeader.SIZE]


@fuzz
@given(client_packets() | st.binary(max_size=80))
def test_a_marks_client_packet_is_read_or_refused_with_a_reason(data):
    try:
        inbound = parse_inner(data)
    except DatagramError as e:
        assert e.reason in DATAGRAM_REASONS
        return
    ihl = (data[0] & 0xF) * 4
    assert inbound.payload == data[ihl + 8:]   # the rest of a whole, checked packet


@st.composite
def peer_headers(draw) -> bytes:
    sender = draw(st.text(max_size=10).map(str.encode) | st.binary(max_size=10))
    header = struct.pack("!BIB", draw(st.sampled_from([1, 2, 3, 1, 2, 3, 0, 4, 255])),
                         draw(st.integers(0, 2**32 - 1)),
                         draw(st.sampled_from([len(sender), len(sender), 0, 255])))
    return header + sender + draw(st.binary(max_size=20))


@fuzz
@given(peer_headers() | st.binary(max_size=30))
def test_a_stamps_peer_header_is_read_or_refused_with_a_reason(data):
    try:
        header, body = parse_peer(data)
    except DatagramError as e:
        assert e.reason in DATAGRAM_REASONS
        return
    assert pack_peer(header.kind, header.seq, header.sender.encode(),
                     header.counted_from) + body == data
    assert header.kind in tuple(PeerKind)


@fuzz
@given(st.binary(max_size=80))
def test_control_plane_bodies_are_read_or_refused_with_a_wire_error(data):
    for layout in (ControlBody, Batch, Probe):
        try:
            layout.unpack(data)
        except WireError:
            assert len(data) < layout.SIZE
    records = Record.unpack_all(data)
    assert len(records) == len(data) // Record.SIZE


@fuzz
@given(st.lists(st.binary(max_size=12) | st.builds(
    lambda n, body: struct.pack("!I", n) + body,
    st.sampled_from([0, 3, MAX_FRAME + 1, 2**32 - 1]), st.binary(max_size=6)), max_size=6))
def test_a_stream_is_cut_into_frames_or_refused_with_a_frame_error(chunks):
    reader, frames = FrameReader(), []
    try:
        for chunk in chunks:
            frames += reader.feed(chunk)
    except FrameError as e:
        assert e.reason == "bad frame"
        return
    stream, rebuilt = b"".join(chunks), b"".join(frame(f) for f in frames)
    assert stream.startswith(rebuilt) and len(stream) - len(rebuilt) < 4 + MAX_FRAME
