"""The cost of in-group reports: reports per second from one runtime, asked
one ID per exchange against many IDs per exchange (traffic/oob/protocol.py's "ids"),
measured in the same run, and their ratio.

One key-value replica runs as its own process (`python -m
beaver.traffic.services.kvstore`), holding --keys keys (put through its VIP, as the
SLB would deliver them) and --snapshots snapshots taken one at a time out
of band, so that each report carries a real local state and the records
are many.  This process plays the controller on one TCP connection: in
each round it asks --reports reports, cycling over the kept IDs, either
one "report" per ID or --batch IDs per "report".  Rounds come in pairs,
in alternating order (single first, then many first), and the figure is
each pair's ratio, with their median, min and max.  Beside the rate, the
replica's CPU time per report (from /proc/PID/task/*/schedstat).

Run: python bench/reports.py [--reports 5000] [--rounds 5] [--batch 64]
"""
from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time

from beaver.traffic.oob import protocol as oob
from beaver.p4src.wire import BEAVER_UDP_PORT, RING_SIZE, BeaverHeader, Kind

from runtime import cpu_ns, spread
from runtime_instructions import inner_packet

DIP, SLB, VIP = "127.0.5.41", "127.0.5.42", ("127.0.5.141", 7000)


def start_replica() -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "beaver.traffic.services.kvstore", "--name", "kv1", "--dip", DIP,
         "--vip", f"{VIP[0]}:{VIP[1]}", "--slb", SLB, "--mode", "beaver"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if "serving" not in process.stderr.readline():
        raise SystemExit(f"kv1 did not start: {process.stderr.read()}")
    return process


def put_keys(count: int):
    """Puts through the VIP, marked 0 as the SLB would send them, each answered."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((SLB, 0))
        sock.settimeout(2)
        for i in range(count):
            message = {"id": f"b:{i}", "op": "put", "key": f"k{i}", "value": "v" * 20}
            sock.sendto(BeaverHeader(Kind.MARK, 0, origin=1).pack()
                        + inner_packet(json.dumps(message).encode(), sock.getsockname(), VIP),
                        (DIP, BEAVER_UDP_PORT))
            sock.recv(2048)   # the DSR reply, to the client address this socket is


def ask(sock: socket.socket, ids: list[int], batch: int) -> int:
    """Asks the reports of ids, batch IDs per exchange (1: the single-ID form)."""
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        request = ({"v": oob.VERSION, "op": "report", "id": chunk[0]} if batch == 1
                   else {"v": oob.VERSION, "op": "report", "ids": chunk})
        answer = oob.request(sock, request)
        reports = [answer] if batch == 1 else answer["reports"]
        if [r.get("snapshot_id") for r in reports] != chunk:
            raise SystemExit(f"asked for {chunk[:3]}..., answered {str(answer)[:200]}")
    return len(ids)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reports", type=int, default=5000, help="reports asked per round")
    p.add_argument("--rounds", type=int, default=5, help="pairs of rounds counted")
    p.add_argument("--batch", type=int, default=min(RING_SIZE, oob.MAX_IDS),
                   help="IDs per exchange in the many-IDs rounds")
    p.add_argument("--snapshots", type=int, default=RING_SIZE, help="kept snapshot IDs")
    p.add_argument("--keys", type=int, default=100, help="keys in the replica's state")
    args = p.parse_args()

    replica = start_replica()
    try:
        put_keys(args.keys)
        sock = socket.create_connection((DIP, oob.OOB_PORT), timeout=5)
        for snapshot_id in range(1, args.snapshots + 1):
            oob.request(sock, {"v": oob.VERSION, "op": "snapshot", "id": snapshot_id})
        kept = list(range(1, args.snapshots + 1))
        ids = [kept[i % len(kept)] for i in range(args.reports)]
        report_bytes = len(oob.encode(oob.request(sock, {"v": oob.VERSION, "op": "report",
                                                          "id": kept[-1]})))
        ratios, cpu_ratios = [], []
        for round_ in range(args.rounds + 1):   # round 0 warms up and is not counted
            sides = {"single": 1, "many": args.batch}
            order = list(sides) if round_ % 2 else list(reversed(sides))
            rate, cpu = {}, {}
            for side in order:
                cpu_before = cpu_ns([replica])
                started = time.perf_counter()
                answered = ask(sock, ids, sides[side])
                rate[side] = answered / (time.perf_counter() - started)
                cpu[side] = (cpu_ns([replica]) - cpu_before) / 1000 / answered
            if round_:
                ratios.append(rate["many"] / rate["single"])
                cpu_ratios.append(cpu["single"] / cpu["many"])
            print(f"pair {round_} ({order[0]} first): "
                  + ", ".join(f"{side} {rate[side]:7.0f} reports/s {cpu[side]:6.1f} us CPU/report"
                              for side in sides)
                  + (f"; many/single {ratios[-1]:.2f}, CPU single/many {cpu_ratios[-1]:.2f}"
                     if round_ else " (warm-up)"), flush=True)
        sock.close()
    finally:
        replica.terminate()
        replica.communicate(timeout=10)
    print(json.dumps({
        "reports_per_round": args.reports, "pairs": args.rounds, "batch": args.batch,
        "kept_snapshots": args.snapshots, "keys": args.keys, "report_bytes": report_bytes,
        "rate_ratio_many_over_single": spread(ratios),
        "cpu_ratio_single_over_many": spread(cpu_ratios)}, indent=1))


if __name__ == "__main__":
    main()
