"""The kernel decapsulation program (traffic/runtime/bpf/decap.c) loaded by tc on a
veth inside a network namespace, fed packets crafted with scapy from the
root namespace's end: what reaches the namespace's sockets, the counters,
and the newest ID per flow."""
from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import threading
import time

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.sendrecv import AsyncSniffer, sendp

from beaver.p4src.wire import Kind
from beaver.topologies import decap
from beaver.traffic.runtime.flowmap import FlowIds

from tests.support.packets import Beaver

pytestmark = pytest.mark.bpf

NS = f"b12dec{os.getpid() % 10000}"     # distinctive: others share this host's namespaces
OUTER, INNER = f"b12o{os.getpid() % 10000}", f"b12i{os.getpid() % 10000}"
GATEWAY, HOST, VIP = "10.212.0.1", "10.212.0.2", "10.212.9.1"
SLB, STRANGER = "10.212.0.11", "10.212.0.99"
INNER_MAC = "02:12:00:00:00:02"
CLIENT = ("10.212.5.5", 40000)


def ns_run(command: str) -> str:
    return subprocess.run(["ip", "netns", "exec", NS, "sh", "-c", command],
                          capture_output=True, text=True).stdout


def socket_in_ns(kind: int, address: tuple[str, int]) -> socket.socket:
    """A socket of the namespace: made by a thread that entered it (setns
    moves only the calling thread)."""
    made: list[socket.socket] = []

    def make():
        libc = ctypes.CDLL(None, use_errno=True)
        with open(f"/run/netns/{NS}") as ns:
            if libc.setns(ns.fileno(), 0x40000000) != 0:   # CLONE_NEWNET
                raise OSError(ctypes.get_errno(), "setns")
        sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        made.append(sock)

    thread = threading.Thread(target=make)
    thread.start()
    thread.join()
    made[0].settimeout(2)
    return made[0]


@pytest.fixture(scope="module")
def host():
    """The namespace with the program on its interface; the SLB is SLB."""
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)
    subprocess.run(["ip", "link", "del", OUTER], capture_output=True)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    subprocess.run(["ip", "link", "add", OUTER, "type", "veth", "peer", "name", INNER,
                    "netns", NS], check=True)
    for setting in ("ipv6.conf.all.disable_ipv6=1", "ipv4.conf.all.rp_filter=0",
                    f"ipv4.conf.{INNER}.rp_filter=0", "ipv4.conf.default.rp_filter=0"):
        ns_run(f"sysctl -qw net.{setting}")
    subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{OUTER}.disable_ipv6=1"])
    subprocess.run(["ip", "addr", "add", f"{GATEWAY}/24", "dev", OUTER], check=True)
    subprocess.run(["ip", "link", "set", OUTER, "up"], check=True)
    ns_run(f"ip link set {INNER} address {INNER_MAC} && ip link set {INNER} up && "
           f"ip link set lo up && ip addr add {HOST}/24 dev {INNER} && "
           f"ip addr add {VIP}/32 dev lo && ip route add default via {GATEWAY}")
    loaded = decap.attach(ns_run, INNER, [SLB])
    yield loaded
    decap.detach(ns_run, INNER)
    subprocess.run(["ip", "link", "del", OUTER], capture_output=True)
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)


def send(packet):
    sendp(Ether(dst=INNER_MAC) / packet, iface=OUTER, verbose=False)


def mark(inner, snapshot_id: int, source: str = SLB, dst: str = HOST):
    """What the SLB sends (outer UDP checksum 0, as load_balancer.p4)."""
    return (IP(src=source, dst=dst) / UDP(sport=49152, dport=4790, chksum=0)
            / Beaver(kind=Kind.MARK, origin=1, snapshot_id=snapshot_id) / inner)


def syn(client=CLIENT, port: int = 7000):
    return IP(src=client[0], dst=VIP) / TCP(sport=client[1], dport=port, flags="S", seq=1000)


def grow(counter: str, before: dict, loaded, by: int = 1):
    deadline = time.monotonic() + 2
    while loaded.counters()[counter] < before[counter] + by:
        assert time.monotonic() < deadline, f"{counter} did not grow: {loaded.counters()}"
        time.sleep(0.01)


def test_a_mark_from_the_slb_reaches_tcp_and_records_its_id(host):
    listener = socket_in_ns(socket.SOCK_STREAM, (VIP, 7000))
    listener.listen()
    before = host.counters()
    sniffer = AsyncSniffer(iface=OUTER, filter=f"tcp and src host {VIP}", count=1)
    sniffer.start()
    time.sleep(0.2)
    send(mark(syn(), 5))
    sniffer.join(timeout=3)
    answers = sniffer.stop() if sniffer.running else sniffer.results
    listener.close()
    assert answers, "no SYN-ACK: the decapsulated SYN never reached the listening socket"
    assert answers[0][TCP].flags == "SA" and answers[0][TCP].dport == CLIENT[1]
    grow("decapsulated", before, host)
    flows = FlowIds(host.maps["flow_ids"], host.maps["newest_id"])
    assert flows.lookup(CLIENT, (VIP, 7000)) == 5
    assert flows.newest[0] == 5, "the host's newest ID, read from the mapped map"
    flows.close()


def test_the_map_keeps_the_newest_id_of_each_flow_across_the_wrap(host):
    flows = FlowIds(host.maps["flow_ids"], host.maps["newest_id"])
    client, other = ("10.212.5.6", 40001), ("10.212.5.7", 40002)
    for snapshot_id, expected in ((8, 8), (3, 8), (9, 9)):    # an older ID never lowers it
        before = host.counters()
        send(mark(syn(client, 7001), snapshot_id))
        grow("decapsulated", before, host)
        assert flows.lookup(client, (VIP, 7001)) == expected
        assert flows.newest[0] == expected, "newest: of every flow, never lowered"
    for snapshot_id, newest in ((0xFFFFFFFE, 9), (1, 9), (12, 12)):   # 1 is newer, past the wrap
        before = host.counters()
        send(mark(syn(other, 7001), snapshot_id))
        grow("decapsulated", before, host)
        assert flows.lookup(other, (VIP, 7001)) == snapshot_id, "each newer for the flow"
        assert flows.newest[0] == newest, "(0xFFFFFFFE and 1 are older than 9)"
    assert flows.lookup(client, (VIP, 7001)) == 9, "flows are kept apart"
    flows.close()


def test_foreign_malformed_udp_and_plain_packets_pass_unchanged(host):
    beaver_port = socket_in_ns(socket.SOCK_DGRAM, ("0.0.0.0", 4790))
    plain_port = socket_in_ns(socket.SOCK_DGRAM, (HOST, 5555))
    flows = FlowIds(host.maps["flow_ids"])
    stranger_client = ("10.212.5.8", 40003)
    cases = [
        ("foreign", mark(syn(stranger_client), 7, source=STRANGER)),
        ("malformed", mark(IP(bytes(syn(stranger_client))[:30]), 7)),   # truncated inner
        ("left_udp", mark(IP(src=CLIENT[0], dst=VIP) / UDP(sport=1, dport=7000) / b"u", 7)),
    ]
    for counter, packet in cases:
        before = host.counters()
        send(packet)
        data, _ = beaver_port.recvfrom(2048)
        assert data == bytes(packet[Beaver]), f"{counter}: not passed unchanged"
        grow(counter, before, host)
        assert host.counters()["decapsulated"] == before["decapsulated"]
    assert flows.lookup(stranger_client, (VIP, 7000)) is None, "only decapsulated MARKs count"
    with_newest = FlowIds(host.maps["flow_ids"], host.maps["newest_id"])
    assert with_newest.newest[0] == 12, "nor is newest raised"
    with_newest.close()

    stamp = IP(src=SLB, dst=HOST) / UDP(sport=4790, dport=4790) / Beaver(
        kind=Kind.STAMP, snapshot_id=4) / b"peer"
    send(stamp)
    assert beaver_port.recvfrom(2048)[0] == bytes(stamp[Beaver])
    send(IP(src=STRANGER, dst=HOST) / UDP(sport=9, dport=5555) / b"plain")
    assert plain_port.recvfrom(2048)[0] == b"plain"
    for sock in (beaver_port, plain_port):
        sock.close()
    flows.close()


def test_loading_where_it_cannot_says_why(host):
    with pytest.raises(decap.DecapError, match="cannot load.*b12nosuch"):
        decap.attach(ns_run, "b12nosuch", [SLB])
