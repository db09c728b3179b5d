"""What the SLBs' ring of epoch records and schedules costs BMv2: memory and
CPU per forwarded packet, the committed program (a ring of RING_SIZE) against
the same program with a smaller ring.

    sudo .venv/bin/python bench/ring.py [--baseline-bits 10] [--packets N] [--rounds R]

The baseline is p4src/ compiled into a temporary folder with RING_BITS (and
RING_SIZE, SCHEDULE_MAX with it) set to --baseline-bits.  One
simple_switch_grpc per program, each on its own veth pairs.  Prints each
one's resident memory (VmRSS) before its pipeline, with the pipeline and its
entries, and after the traffic; then, per round, each one's BMv2 CPU per
forwarded VIP packet (marking on, as bench/dataplane.py offers them), the
two taking turns so both see the same machine; the medians and the paired
ratios.  BEAVER_BMV2 names the BMv2 binary to run.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from beaver.control.p4runtime.session import SwitchSession
from beaver.control.slbs.program import Route, Vip, slb_updates
from beaver.p4src import BMV2_JSON, P4_DIR, P4INFO
from beaver.p4src.compiler import compile_p4
from beaver.p4src.wire import RING_SIZE
from beaver.topologies.bmv2 import Bmv2Switch, bmv2_build
from beaver.topologies.cpu import cpu_seconds
from beaver.topologies.veth import VethPairs

from dataplane import BACKENDS, SLB_MAC, VIP, offer, raw_socket   # bench/, beside this file

RING_LINES = ((r"#define RING_BITS \d+", "#define RING_BITS {bits}"),
              (r"const bit<32> RING_SIZE = \d+;", "const bit<32> RING_SIZE = {size};"),
              (r"const bit<16> SCHEDULE_MAX = \d+;", "const bit<16> SCHEDULE_MAX = {most};"))
REGISTERS_BY_ID = 8   # epoch.p4's registers of RING_SIZE cells: four of records, four of schedules


def compile_with_ring(bits: int, folder: Path) -> tuple[Path, Path]:
    """p4src/ with a ring of 2^bits, compiled into folder: (bmv2 json, p4info)."""
    source = folder / "p4src"
    shutil.copytree(P4_DIR, source, ignore=shutil.ignore_patterns("build", "*.py", "__pycache__"))
    headers = source / "headers.p4"
    text = headers.read_text()
    for pattern, line in RING_LINES:
        text, found = re.subn(pattern, line.format(bits=bits, size=1 << bits,
                                                   most=(1 << bits) - 1), text)
        if found != 1:
            raise SystemExit(f"headers.p4 has no single line matching {pattern!r}")
    headers.write_text(text)
    return compile_p4(folder / "build", source)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"process {pid} reports no VmRSS")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-bits", type=int, default=10,
                        help="RING_BITS of the baseline (default 10: 1,024 records)")
    parser.add_argument("--packets", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (veth pairs)", file=sys.stderr)
        return 1
    if not 1 <= args.baseline_bits <= 16:
        print("--baseline-bits must be 1 to 16 (batch_t.count is 16 bits)", file=sys.stderr)
        return 1

    frames = [bytes(Ether(dst=SLB_MAC) / IP(src=f"10.0.1.{1 + i % 200}", dst=VIP) /
                    UDP(sport=1024 + i, dport=80) / (b"x" * 18)) for i in range(512)]
    print(f"BMv2: {bmv2_build()}")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        baseline_size = 1 << args.baseline_bits
        programs = {f"ring {baseline_size}": compile_with_ring(args.baseline_bits, Path(tmp)),
                    f"ring {RING_SIZE}": (BMV2_JSON, P4INFO)}
        switches, ports, memory = {}, {}, {}
        for i, (name, (program, p4info)) in enumerate(programs.items()):
            veths = stack.enter_context(VethPairs(f"brg{i}", 4))
            switch = Bmv2Switch(f"ring{i}", veths.switch_ends, 29571 + i, 1, tmp,
                                thrift_port=29081 + i)
            switch.start()
            stack.callback(switch.stop)
            empty = rss_kib(switch.process.pid)
            session = SwitchSession(f"ring{i}", switch.grpc_address, 1)
            stack.callback(session.close)
            session.connect(p4info)
            session.set_pipeline(p4info, program)
            routes = [Route(f"{dip}/32", port, SLB_MAC, f"00:00:00:00:00:0{port}")
                      for port, dip in BACKENDS.items()]
            session.write(*slb_updates(session.ctx, 1, "10.0.0.254",
                                       [Vip(VIP, "udp", 80, tuple(BACKENDS.values()))],
                                       routes, []))
            switches[name] = switch
            memory[name] = [empty, rss_kib(switch.process.pid)]
            ports[name] = (raw_socket(veths.host_ends[1]),
                           [raw_socket(veths.host_ends[p]) for p in BACKENDS])
        print(f"{args.packets} packets per round, {len(frames)} flows, marking on")
        costs = {name: [] for name in programs}
        for round_no in range(1, args.rounds + 1):
            order = list(programs) if round_no % 2 else list(reversed(programs))
            for name in order:
                pid = switches[name].process.pid
                cpu_before = cpu_seconds(pid)
                delivered, seconds = offer(*ports[name], frames, args.packets)
                cpu_us = (cpu_seconds(pid) - cpu_before) * 1e6 / args.packets
                costs[name].append(cpu_us)
                print(f"round {round_no} {name:10s}: {delivered:6d} delivered in "
                      f"{seconds:6.3f} s = {delivered / seconds:8.0f} pkt/s, "
                      f"BMv2 {cpu_us:5.1f} us CPU/packet")
        for name in programs:
            memory[name].append(rss_kib(switches[name].process.pid))
            if not switches[name].alive:
                print(f"{name}: the switch died", file=sys.stderr)
                return 1

    print()
    for name, (empty, loaded, after) in memory.items():
        print(f"{name:10s} VmRSS: {empty / 1024:7.1f} MiB without a program, "
              f"{loaded / 1024:7.1f} MiB loaded, {after / 1024:7.1f} MiB after the traffic")
    small, large = programs
    grown = memory[large][1] - memory[small][1]
    cells = REGISTERS_BY_ID * (RING_SIZE - baseline_size)
    print(f"loaded, {large} - {small}: {grown / 1024:+.1f} MiB "
          f"({grown * 1024 / cells:.0f} bytes per register cell added, {cells} cells)")
    for name in programs:
        print(f"median {name:10s}: BMv2 {statistics.median(costs[name]):5.1f} us CPU/packet")
    pairs = [b / a for a, b in zip(costs[small], costs[large])]
    q1, _, q3 = statistics.quantiles(pairs, n=4) if len(pairs) > 1 else [pairs[0]] * 3
    print(f"paired CPU {large}/{small}: median {statistics.median(pairs):.3f}, quartiles "
          f"{q1:.3f}-{q3:.3f}, range {min(pairs):.3f}-{max(pairs):.3f} ({len(pairs)} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
