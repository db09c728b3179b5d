"""What the fuzz tests (tests/unit/test_fuzz_*.py) share: Hypothesis's
bounds, so that the suite stays fast, and strategies for hostile JSON and
client packets."""
from __future__ import annotations

import json
import socket
import struct

from hypothesis import HealthCheck, settings, strategies as st

# Bounded: a few hundred examples, no per-example deadline (a shared machine
# stalls now and then), and no example database written into the checkout.
fuzz = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=20)


@st.composite
def nested(draw, max_depth: int = 3000) -> bytes:
    """JSON nested deep: arrays or objects, depth up to max_depth."""
    depth = draw(st.integers(0, max_depth))
    opening, closing = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    return (opening * depth + "0" + closing * depth).encode()


def json_bytes(values=json_values) -> st.SearchStrategy[bytes]:
    """JSON text of values (some not JSON: NaN), deep nesting, or any bytes."""
    return (values.map(lambda v: json.dumps(v).encode()) | nested() | st.binary(max_size=200))


PACKET_FAULTS = [None, None, None, "version", "ihl", "total length", "udp length",
                 "fragment", "protocol", "cut", "extra"]


@st.composite
def client_packets(draw) -> bytes:
    """An IPv4/UDP packet as an SLB encapsulates it, whole or with one fault."""
    fault = draw(st.sampled_from(PACKET_FAULTS))
    payload = draw(st.binary(max_size=40))
    ihl = draw(st.sampled_from([0, 4, 6, 15])) if fault == "ihl" else draw(st.sampled_from([5, 6]))
    total = ihl * 4 + 8 + len(payload)
    udp_len = 8 + len(payload)
    header = struct.pack(
        "!BBHHHBBH4s4s",
        ((draw(st.sampled_from([0, 6])) if fault == "version" else 4) << 4) | ihl, 0,
        draw(st.integers(0, 65535)) if fault == "total length" else total, 0,
        draw(st.sampled_from([0x2000, 0x0001, 0x1fff])) if fault == "fragment" else 0x4000,
        64, draw(st.sampled_from([1, 6, 255])) if fault == "protocol" else 17, 0,
        socket.inet_aton("127.0.4.50"), socket.inet_aton("127.0.4.101"))
    udp = struct.pack("!HHHH", 40000, 7000,
                      draw(st.integers(0, 65535)) if fault == "udp length" else udp_len, 0)
    packet = header + bytes(max(0, ihl - 5) * 4) + udp + payload
    if fault == "cut":
        packet = packet[:draw(st.integers(0, len(packet) - 1))]
    if fault == "extra":
        packet += draw(st.binary(min_size=1, max_size=4))
    return packet
