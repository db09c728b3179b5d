"""Forwarding rate of the Beaver SLB on BMv2, with marking on and off.

    sudo .venv/bin/python bench/dataplane.py [--packets N] [--rounds R]

One simple_switch_grpc on veth pairs runs beaver.p4.  Each round pushes N
VIP packets (many flows, a closed loop that keeps the switch busy without
overflowing its input queue) once with marking on
(epoch registers read and written per packet) and once with marking off (the
same encapsulation, no epoch state), alternating so both see the same
machine.  The rate of one round is packets delivered to the backends over
the time from the first to the last delivery.  Prints each round, the
medians and their ratio, and the ratios of each round's pair (median,
quartiles, range).  Marking on includes the timed-activation check
every marked packet makes.  BEAVER_BMV2 names the BMv2 binary to run.
"""
from __future__ import annotations

import argparse
import os
import select
import socket
import statistics
import sys
import tempfile
import time

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from beaver.control.slbs.program import Route, Vip, config_entry, slb_updates
from beaver.control.p4runtime.session import SwitchSession
from beaver.p4src import BMV2_JSON, P4INFO
from beaver.p4src.wire import BEAVER_UDP_PORT
from beaver.topologies.bmv2 import Bmv2Switch, bmv2_build
from beaver.topologies.cpu import cpu_seconds
from beaver.topologies.veth import VethPairs

SLB_MAC = "00:00:00:00:00:fe"
VIP = "10.10.0.1"
BACKENDS = {2: "10.0.2.1", 3: "10.0.2.2", 4: "10.0.2.3"}
ETH_P_ALL = 0x0003
UDP_DPORT_OFFSET = 14 + 20 + 2   # outer Ethernet + IPv4, then UDP's destination port
ENCAPSULATED = BEAVER_UDP_PORT.to_bytes(2, "big")


def raw_socket(iface: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    s.bind((iface, 0))
    return s


def offer(sender: socket.socket, receivers: list[socket.socket], frames: list[bytes],
          packets: int, window: int = 24, stall: float = 0.05) -> tuple[int, float]:
    """Keeps at most `window` packets inside the switch (closed loop: BMv2
    takes in bursts of about 32 and drops the rest before its pipeline) until
    `packets` were sent; returns
    (delivered, seconds from the first to the last delivery).  Packets not
    delivered within `stall` seconds count as lost and leave the window."""
    for s in receivers:
        s.setblocking(False)
    sent = delivered = lost = 0
    first = last = None
    while True:
        while sent < packets and sent - delivered - lost < window:
            sender.send(frames[sent % len(frames)])
            sent += 1
        ready, _, _ = select.select(receivers, [], [], stall)
        if not ready:
            lost = sent - delivered
            if sent == packets:
                break
        if taken := take_encapsulated(ready):
            delivered += taken
            last = time.monotonic()
            first = first or last
    return delivered, (last - first) if delivered > 1 else float("nan")


def take_encapsulated(ready) -> int:
    """Drains the sockets ready to read; how many of their frames the SLB
    encapsulated (the rest are strays: ARP, IPv6 chatter)."""
    taken = 0
    for s in ready:
        while True:
            try:
                frame = s.recv(2048)
            except BlockingIOError:
                break
            taken += frame[UDP_DPORT_OFFSET:UDP_DPORT_OFFSET + 2] == ENCAPSULATED
    return taken


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packets", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (veth pairs)", file=sys.stderr)
        return 1

    frames = [bytes(Ether(dst=SLB_MAC) / IP(src=f"10.0.1.{1 + i % 200}", dst=VIP) /
                    UDP(sport=1024 + i, dport=80) / (b"x" * 18)) for i in range(512)]
    with VethPairs("bbench", 4) as veths, tempfile.TemporaryDirectory() as logs:
        switch = Bmv2Switch("bench", veths.switch_ends, 29559, 1, logs, thrift_port=29090)
        switch.start()
        session = SwitchSession("bench", switch.grpc_address, 1)
        try:
            session.connect(P4INFO)
            session.set_pipeline(P4INFO, BMV2_JSON)
            routes = [Route(f"{dip}/32", port, SLB_MAC, f"00:00:00:00:00:0{port}")
                      for port, dip in BACKENDS.items()]
            session.write(*slb_updates(session.ctx, 1, "10.0.0.254",
                                       [Vip(VIP, "udp", 80, tuple(BACKENDS.values()))],
                                       routes, []))
            sender = raw_socket(veths.host_ends[1])
            receivers = [raw_socket(veths.host_ends[p]) for p in BACKENDS]
            rates = {True: [], False: []}
            costs = {True: [], False: []}
            print(f"BMv2: {bmv2_build()}")
            print(f"{args.packets} packets per round, {len(frames)} flows")
            for round_no in range(1, args.rounds + 1):
                # Alternate which goes first, so neither gains from its place.
                for marking in (True, False) if round_no % 2 else (False, True):
                    session.modify(config_entry(session.ctx, 1, "10.0.0.254", marking))
                    cpu_before = cpu_seconds(switch.process.pid)
                    delivered, seconds = offer(sender, receivers, frames, args.packets)
                    cpu_us = (cpu_seconds(switch.process.pid) - cpu_before) * 1e6 / args.packets
                    rate = delivered / seconds
                    rates[marking].append(rate)
                    costs[marking].append(cpu_us)
                    print(f"round {round_no} marking {'on ' if marking else 'off'}: "
                          f"{delivered:6d} delivered in {seconds:6.3f} s = {rate:8.0f} pkt/s, "
                          f"BMv2 {cpu_us:5.1f} us CPU/packet")
        finally:
            session.close()
            switch.stop()
    on, off = statistics.median(rates[True]), statistics.median(rates[False])
    cost_on, cost_off = statistics.median(costs[True]), statistics.median(costs[False])
    print(f"\nmedian marking on : {on:8.0f} pkt/s, BMv2 {cost_on:5.1f} us CPU/packet")
    print(f"median marking off: {off:8.0f} pkt/s, BMv2 {cost_off:5.1f} us CPU/packet")
    print(f"ratio on/off      : {on / off:.3f} (rate), {cost_off / cost_on:.3f} (CPU per packet)")
    # Each round's pair saw the same moment of a shared machine: their ratios
    # spread less than the medians' ratio suggests.
    for name, pairs in (("rate on/off", [a / b for a, b in zip(rates[True], rates[False])]),
                        ("CPU off/on", [b / a for a, b in zip(costs[True], costs[False])])):
        q1, _, q3 = statistics.quantiles(pairs, n=4) if len(pairs) > 1 else [pairs[0]] * 3
        print(f"paired {name:11s}: median {statistics.median(pairs):.3f}, quartiles "
              f"{q1:.3f}-{q3:.3f}, range {min(pairs):.3f}-{max(pairs):.3f} "
              f"({len(pairs)} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
