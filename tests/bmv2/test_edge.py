"""The edge on a real simple_switch_grpc, over veths (the same switch and
harness as test_dataplane.py): a Beaver header (MARK or STAMP) arriving on
a port that is not in-group facing is dropped and counted, whatever address
it claims; the SLB's own MARKs and in-group STAMPs pass as before.

Every forged ID below is one the SLB would learn, and an in-group process
take, had the header got through: inside the learning window, and newer."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.l2 import Ether

from beaver.p4src.wire import BEAVER_UDP_PORT, DropReason, Kind, RefusedReason

from tests.support.packets import Beaver, stamp
from tests.bmv2.test_dataplane import (BACKENDS, CLIENT, CLIENT_PORT, SLB_ADDR, SLB_ID, SLB_MAC,
                                       VIP, host_mac, is_encapsulated, registers, slb, switch)


__all__ = ["slb", "switch"]   # the fixtures

PEER, DIP = BACKENDS[2], BACKENDS[3]   # in-group: a sender and the backend it writes to
CURRENT, FORGED = 6, 11                # the SLB's ID, and the one a forgery carries
OTHER_SLB = "10.0.0.253"               # another SLB's address, its MARKs crossing the fabric

# Every source address that matters: the one an in-group process trusts a
# MARK by (an SLB's), the one it trusts a STAMP by (a peer's), the one it
# answers from (the VIP), and a client's own.
SOURCES = {"slb": SLB_ADDR, "peer": PEER, "vip": VIP, "client": CLIENT}


def forged_mark(src: str, dst: str = DIP, port: int = CLIENT_PORT):
    """An SLB's encapsulated request, as the runtime accepts it: to a DIP on
    the Beaver port, the client's packet to the VIP inside."""
    return (Ether(src=host_mac(port), dst=SLB_MAC) / IP(src=src, dst=dst) /
            UDP(sport=0xC123, dport=BEAVER_UDP_PORT) /
            Beaver(kind=Kind.MARK, origin=SLB_ID, snapshot_id=FORGED) /
            IP(src=CLIENT, dst=VIP) / UDP(sport=1234, dport=80) / b'{"id":"forged:1"}')


def forged_stamp(src: str, dst: str = DIP, port: int = CLIENT_PORT):
    return stamp(src, dst, FORGED, payload=b"credit me", src_mac=host_mac(port))


FORGERIES = {"mark": forged_mark, "stamp": forged_stamp}


def never_reached_learning(slb) -> bool:
    return (slb.refused(RefusedReason.SOURCE), slb.refused(RefusedReason.AHEAD)) == (0, 0)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("kind", FORGERIES)
def test_a_header_forged_on_the_client_port_is_dropped_counted_and_changes_nothing(
        slb, kind, source):
    slb.init(CURRENT)
    before = registers(slb)
    slb.ports.send(CLIENT_PORT, FORGERIES[kind](SOURCES[source]))
    slb.ports.expect_none(slb.ports.sockets, lambda f: True)
    assert slb.drops(DropReason.OUTGROUP_BEAVER) == 1
    assert registers(slb) == before and slb.current_id() == CURRENT
    assert never_reached_learning(slb), "dropped before learning: neither learned nor refused"


def test_a_forged_header_is_dropped_whatever_its_destination(slb):
    """The VIP (its port is no VIP's), the SLB itself, a client: all dropped."""
    slb.init(CURRENT)
    destinations = (VIP, SLB_ADDR, CLIENT)
    for dst in destinations:
        slb.ports.send(CLIENT_PORT, forged_stamp(PEER, dst))
    slb.ports.expect_none(slb.ports.sockets, lambda f: True)
    assert slb.drops(DropReason.OUTGROUP_BEAVER) == len(destinations)
    assert slb.drops(DropReason.NO_ROUTE) == 0, "the edge comes before routing"
    assert slb.current_id() == CURRENT


@pytest.mark.parametrize("size,reason", [(8, DropReason.TRUNCATED),
                                         (16, DropReason.OUTGROUP_BEAVER)])
def test_a_forged_header_split_into_fragments_loses_its_first_fragment(slb, size, reason):
    """The first fragment carries the UDP header, so the parser finds the
    Beaver port in it: with the UDP header alone it is cut short, with more
    it holds the Beaver header.  Either way it is dropped, and no host puts
    the datagram together without it."""
    slb.init(CURRENT)
    packet = stamp(PEER, DIP, FORGED, payload=b"credit me" * 8)[IP]
    fragments = fragment(packet, fragsize=size)
    assert len(fragments) > 2 and fragments[0].frag == 0
    for piece in fragments:
        slb.ports.send(CLIENT_PORT, Ether(src=host_mac(CLIENT_PORT), dst=SLB_MAC) / piece)
    slb.ports.expect_none(slb.ports.sockets, lambda f: IP in f and f[IP].frag == 0)
    assert slb.drops(reason) == 1
    assert slb.current_id() == CURRENT


# -- what still passes ------------------------------------------------------------

def test_the_slbs_own_marks_reach_the_backends(slb):
    slb.init(CURRENT)
    sent = slb.send_vip(sport=4321)
    port, frame = slb.expect_backend()
    assert frame[IP].src == SLB_ADDR and frame[IP].dst == BACKENDS[port]
    assert (frame[Beaver].origin, frame[Beaver].snapshot_id) == (SLB_ID, CURRENT)
    assert bytes(frame[Beaver].payload) == bytes(sent[IP])
    assert slb.drops(DropReason.OUTGROUP_BEAVER) == 0


def test_an_in_group_stamp_on_an_in_group_port_is_forwarded_and_learned(slb):
    slb.init(CURRENT)
    slb.ports.send(2, forged_stamp(PEER, port=2))   # the very frame, from inside
    got = slb.ports.expect(3, lambda f: Beaver in f)
    assert got[IP].src == PEER and got[Beaver].snapshot_id == FORGED
    assert slb.current_id() == FORGED
    assert slb.drops(DropReason.OUTGROUP_BEAVER) == 0


def test_another_slbs_mark_crosses_an_in_group_port_unchanged(slb):
    """One program serves as SLB and as fabric: a MARK on its way to a DIP
    crosses in-group ports as it is, and moves no ID."""
    slb.init(CURRENT)
    slb.ports.send(2, forged_mark(OTHER_SLB, port=2))
    got = slb.ports.expect(3, is_encapsulated)
    assert got[IP].src == OTHER_SLB and got[Beaver].snapshot_id == FORGED
    assert slb.current_id() == CURRENT and never_reached_learning(slb)
    assert slb.drops(DropReason.OUTGROUP_BEAVER) == 0
