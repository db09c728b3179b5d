"""What the kernel decapsulation (traffic/runtime/bpf/decap.c) costs per packet.

    sudo .venv/bin/python bench/decap.py [--packets N] [--rounds R]

The program is loaded by tc on a veth inside a namespace of its own, as on a
TCP in-group host, and fed from the root namespace's end by a raw socket:
MARKs from the SLB carrying TCP segments of 512 flows (MSS-sized, as iperf3's,
so the strip moves a whole packet's worth of headers) and, alternating with
them round by round, plain TCP segments the program passes over.  The kernel
counts the program's run time while this runs (BPF_ENABLE_STATS, ended with
the process); each round prints nanoseconds per run, then the medians.
Compare with BMv2's microseconds per packet (bench/dataplane.py).
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from beaver.p4src.wire import BEAVER_UDP_PORT, BEAVER_VERSION, Kind
from beaver.topologies import decap
from beaver.traffic.runtime import flowmap

NS, OUTER, INNER = "bbdecap", "bbdeco", "bbdeci"
GATEWAY, HOST, VIP, SLB = "10.213.0.1", "10.213.0.2", "10.213.9.1", "10.213.0.11"
INNER_MAC = "02:13:00:00:00:02"
PAYLOAD = b"x" * 1400


def ns_run(command: str) -> str:
    return subprocess.run(["ip", "netns", "exec", NS, "sh", "-c", command],
                          capture_output=True, text=True).stdout


def beaver_header(snapshot_id: int) -> bytes:
    return bytes([BEAVER_VERSION << 4 | Kind.MARK, 1]) + snapshot_id.to_bytes(4, "big")


def frames(marked: bool, flows: int = 512) -> list[bytes]:
    """TCP segments to the VIP, in MARKs from the SLB (outer UDP checksum 0,
    as load_balancer.p4 sends them) or plain."""
    out = []
    for i in range(flows):
        inner = IP(src=f"10.213.5.{1 + i % 200}", dst=VIP) / TCP(
            sport=20000 + i, dport=7000, flags="A", seq=1, ack=1) / PAYLOAD
        if marked:
            packet = IP(src=SLB, dst=HOST) / UDP(sport=49152, dport=BEAVER_UDP_PORT, chksum=0) \
                / (beaver_header(7) + bytes(inner))
        else:
            packet = inner
        out.append(bytes(Ether(dst=INNER_MAC) / packet))
    return out


def namespace():
    subprocess.run(["ip", "netns", "add", NS], check=True)
    subprocess.run(["ip", "link", "add", OUTER, "type", "veth", "peer", "name", INNER,
                    "netns", NS], check=True)
    subprocess.run(["sysctl", "-qw", f"net.ipv6.conf.{OUTER}.disable_ipv6=1"])
    subprocess.run(["ip", "addr", "add", f"{GATEWAY}/24", "dev", OUTER], check=True)
    subprocess.run(["ip", "link", "set", OUTER, "up"], check=True)
    ns_run(f"sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && "
           f"ip link set {INNER} address {INNER_MAC} && ip link set {INNER} up && "
           f"ip link set lo up && ip addr add {HOST}/24 dev {INNER} && "
           f"ip addr add {VIP}/32 dev lo && ip route add default via {GATEWAY}")


def remove_namespace():
    subprocess.run(["ip", "link", "del", OUTER], capture_output=True)
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)


def offer(sender: socket.socket, batch: list[bytes], packets: int, prog_id: int) -> float:
    """Nanoseconds per run of the program over `packets` sent."""
    ns_before, runs_before = flowmap.run_stats(prog_id)
    for i in range(packets):
        sender.send(batch[i % len(batch)])
    time.sleep(0.2)   # the last ones through the peer's backlog
    ns_after, runs_after = flowmap.run_stats(prog_id)
    runs = runs_after - runs_before
    if runs < packets:
        raise RuntimeError(f"{packets} sent, the program ran {runs} times")
    return (ns_after - ns_before) / runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (a namespace, tc, BPF)", file=sys.stderr)
        return 1
    if (reason := decap.missing()) is not None:
        print(reason, file=sys.stderr)
        return 1
    remove_namespace()
    namespace()
    costs = {True: [], False: []}
    try:
        loaded = decap.attach(ns_run, INNER, [SLB])
        sender = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        sender.bind((OUTER, 0))
        batches = {marked: frames(marked) for marked in (True, False)}
        print(f"{args.packets} packets per round, 512 flows, {len(PAYLOAD)} bytes of payload")
        with flowmap.StatsOn():
            for round_no in range(1, args.rounds + 1):
                for marked in (True, False) if round_no % 2 else (False, True):
                    ns = offer(sender, batches[marked], args.packets, loaded.prog_id)
                    costs[marked].append(ns)
                    print(f"round {round_no} {'MARK, stripped' if marked else 'plain, passed'}: "
                          f"{ns:6.0f} ns per packet")
        counts = loaded.counters()
    finally:
        remove_namespace()
    print(f"\nmedian MARK stripped: {statistics.median(costs[True]):6.0f} ns per packet "
          f"(range {min(costs[True]):.0f}-{max(costs[True]):.0f})")
    print(f"median plain passed : {statistics.median(costs[False]):6.0f} ns per packet "
          f"(range {min(costs[False]):.0f}-{max(costs[False]):.0f})")
    print(f"counters: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
