"""The in-group runtime's per-message overhead: messages per second with and
without the Beaver layer, measured in the same run, and their ratio.

Two pairs of key-value replicas run as their own processes
(`python -m beaver.traffic.services.kvstore`), one pair in mode off, one in mode
beaver.  This process plays the SLB and the clients: it sends requests
already encapsulated (MARK, as the P4 SLB would) to replica 1's DIP with a
window of requests outstanding, and counts the DSR replies.  Half the
requests are puts, which replica 1 replicates to replica 2 (stamped peer
messages).  In the beaver run the mark moves to a new snapshot ID every
--snapshot-every requests, so snapshots are taken (local state, COUNTs)
while traffic flows.

The figure is a ratio of paired rounds: each round measures both pairs
back to back, in alternating order (off first, then beaver first), so
that what the machine does meanwhile (other work on the two cores, clock
changes) weighs on both sides of each ratio alike.  It prints every
pair's ratio and their median, min and max over --rounds pairs, after a
warm-up pair.  Beside the throughput it reports the replicas' CPU time
per request (from /proc/PID/task/*/schedstat), a steadier measure of the
same overhead.  For a count that does not depend on the machine at all,
see bench/runtime_instructions.py.

Run: python bench/runtime.py [--requests 20000] [--rounds 7] [--window 32]
"""
from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scapy.layers.inet import IP, UDP

from beaver.p4src.wire import BEAVER_UDP_PORT, BEAVER_VERSION, BeaverHeader, Kind

CLIENT = "127.0.5.50"
PAIRS = {"off": ("127.0.5.1", "127.0.5.2", ("127.0.5.101", 7000)),
         "beaver": ("127.0.5.11", "127.0.5.12", ("127.0.5.111", 7000))}


def start_pair(mode: str) -> list[subprocess.Popen]:
    dip1, dip2, vip = PAIRS[mode]
    processes = []
    for name, dip, peer in (("kv1", dip1, f"kv2={dip2}"), ("kv2", dip2, f"kv1={dip1}")):
        process = subprocess.Popen(
            [sys.executable, "-m", "beaver.traffic.services.kvstore", "--name", name, "--dip", dip,
             "--vip", f"{vip[0]}:{vip[1]}", "--slb", CLIENT, "--peer", peer, "--mode", mode,
             "--oob-port", "0"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if "serving" not in process.stderr.readline():
            raise SystemExit(f"{name} ({mode}) did not start: {process.stderr.read()}")
        processes.append(process)
    return processes


def cpu_ns(processes: list[subprocess.Popen]) -> int:
    """CPU time the processes' threads have run, in ns (Linux schedstat)."""
    total = 0
    for process in processes:
        for task in Path(f"/proc/{process.pid}/task").iterdir():
            total += int((task / "schedstat").read_text().split()[0])
    return total


def requests(client: tuple[str, int], vip: tuple[str, int], count: int = 256) -> list[bytes]:
    """Inner packets (client -> VIP) of a 50 % put, 50 % get workload."""
    rng = random.Random(1)
    packets = []
    for i in range(count):
        key = f"k{rng.randrange(100)}"
        message = ({"id": f"g:{i}", "op": "put", "key": key, "value": i} if i % 2
                   else {"id": f"g:{i}", "op": "get", "key": key})
        packets.append(bytes(IP(src=client[0], dst=vip[0]) / UDP(sport=client[1], dport=vip[1])
                             / json.dumps(message).encode()))
    return packets


def measure(sock: socket.socket, dip: str, vip: tuple[str, int], total: int, window: int,
            snapshot_every: int, first_id: int) -> tuple[float, int]:
    """Replies per second for `total` requests; returns it and the next snapshot ID."""
    inner = requests(sock.getsockname(), vip)
    mark = BeaverHeader.FORMAT
    kind = (BEAVER_VERSION << 4) | Kind.MARK
    sent = replies = 0
    snapshot_id = first_id

    def send_one():
        nonlocal sent, snapshot_id
        if snapshot_every and sent % snapshot_every == 0:
            snapshot_id += 1
        sock.sendto(mark.pack(kind, 1, snapshot_id) + inner[sent % len(inner)],
                    (dip, BEAVER_UDP_PORT))
        sent += 1

    started = time.perf_counter()
    for _ in range(window):
        send_one()
    while replies < total:
        try:
            sock.recv(2048)
        except socket.timeout:      # lost datagrams: refill the window
            for _ in range(window):
                send_one()
            continue
        replies += 1
        send_one()
    elapsed = time.perf_counter() - started
    while True:                     # drain the window's stragglers
        try:
            sock.recv(2048)
        except socket.timeout:
            break
    return total / elapsed, snapshot_id


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=20000, help="replies counted per round")
    p.add_argument("--rounds", type=int, default=7, help="pairs of rounds counted")
    p.add_argument("--window", type=int, default=32, help="requests outstanding")
    p.add_argument("--snapshot-every", type=int, default=1000,
                   help="beaver run: a new snapshot ID every this many requests (0: never)")
    args = p.parse_args()

    processes = {mode: start_pair(mode) for mode in PAIRS}
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((CLIENT, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.settimeout(0.2)
    ratios, cpu_ratios = [], []               # beaver over off, per pair of rounds
    snapshot_id = 0
    try:
        for round_ in range(args.rounds + 1):   # round 0 warms up and is not counted
            order = list(PAIRS) if round_ % 2 else list(reversed(PAIRS))
            rate, cpu = {}, {}
            for mode in order:
                dip1, _, vip = PAIRS[mode]
                cpu_before = cpu_ns(processes[mode])
                if mode == "beaver":   # the IDs go on from round to round
                    rate[mode], snapshot_id = measure(sock, dip1, vip, args.requests,
                                                      args.window, args.snapshot_every,
                                                      snapshot_id)
                else:
                    rate[mode], _ = measure(sock, dip1, vip, args.requests, args.window, 0, 0)
                cpu[mode] = (cpu_ns(processes[mode]) - cpu_before) / 1000 / args.requests
            if round_:
                ratios.append(rate["beaver"] / rate["off"])
                cpu_ratios.append(cpu["beaver"] / cpu["off"])
            print(f"pair {round_} ({order[0]} first): "
                  + ", ".join(f"{mode} {rate[mode]:7.0f} msg/s {cpu[mode]:6.2f} us CPU/req"
                              for mode in PAIRS)
                  + (f"; beaver/off {ratios[-1]:.3f}, CPU {cpu_ratios[-1]:.3f}" if round_
                     else " (warm-up)"), flush=True)
    finally:
        drops = {}
        for mode, pair in processes.items():
            for process in pair:
                process.terminate()
                summary = json.loads(process.communicate(timeout=10)[0])
                drops[f"{mode}/{summary['process']}"] = summary["drops"]
    print(json.dumps({
        "requests_per_round": args.requests, "pairs": args.rounds, "window": args.window,
        "snapshots_taken": snapshot_id,
        "ratio_beaver_over_off": spread(ratios),
        "cpu_ratio_beaver_over_off": spread(cpu_ratios),
        "drops": drops}, indent=1))


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


if __name__ == "__main__":
    main()
