"""The cost of a batch's in-group reports: snapshots whose reports are
collected per second, the old path (every ID asked on its own, the link
coalescing them into "ids" exchanges, one report per ID) against reports by
distinct state (one run per batch, one report per distinct cut,
traffic/oob/cuts.py), measured in the same run, and their ratio.

One key-value replica runs as its own process (`python -m
beaver.traffic.services.kvstore`), holding --keys keys (put through its VIP,
as the SLB would deliver them).  This process plays the controller through
the controller's own link (traffic/oob/links.py: its thread, its base
states, its decoding): each round takes --batches batches of --batch fresh
IDs out of band ("snapshot"), every report of each batch collected before
the next starts, one way or the other.  Before each batch --puts puts
arrive marked with IDs inside it, so that the replica's state changes
within the batch (--puts + 1 distinct cuts; 0: fig10's quiet replica).
Rounds come in pairs in alternating order, and the figure is each pair's
ratio (runs over per-ID), with their median, min and max; beside the rate,
the replica's CPU time per snapshot (from /proc/PID/task/*/schedstat).

Run: python bench/reports.py [--batch 255] [--batches 40] [--rounds 5] [--puts 0]
"""
from __future__ import annotations

import argparse
import json
import queue
import socket
import subprocess
import sys
import time

from beaver.control.config import ProcessConfig
from beaver.p4src.ids import next_id
from beaver.p4src.wire import BEAVER_UDP_PORT, SCHEDULE_MAX, BeaverHeader, Kind
from beaver.traffic.oob import protocol as oob
from beaver.traffic.oob.links import ProcessLink

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


class Client:
    """Puts through the VIP, marked as the SLB would send them, each answered."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((SLB, 0))
        self.sock.settimeout(2)
        self.sent = 0

    def put(self, mark: int):
        self.sent += 1
        message = {"id": f"b:{self.sent}", "op": "put", "key": f"k{self.sent % 100}",
                   "value": "v" * 20}
        self.sock.sendto(BeaverHeader(Kind.MARK, mark, origin=1).pack()
                         + inner_packet(json.dumps(message).encode(), self.sock.getsockname(),
                                        VIP), (DIP, BEAVER_UDP_PORT))
        self.sock.recv(2048)   # the DSR reply, to the client address this socket is


def per_id(link: ProcessLink, answers: queue.SimpleQueue, first: int, count: int) -> int:
    """The old path: each ID asked on its own; returns the reports taken."""
    for i in range(count):
        link.ask("snapshot", next_id(first, i), i)
    got = [answers.get(timeout=10) for _ in range(count)]
    return sum(1 for a in got if a.report is not None and a.report.taken)


def by_run(link: ProcessLink, answers: queue.SimpleQueue, first: int, count: int) -> int:
    """One run: returns the IDs its cuts report taken."""
    link.ask_run("snapshot", first, count, None)
    answered = answers.get(timeout=10)
    if answered.cuts is None:
        raise SystemExit(f"the run failed: {answered.error}")
    return sum(c.count for c in answered.cuts if not isinstance(c.answer, str)
               and c.answer.taken)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=255, help=f"IDs per batch (fig10's; at most "
                                                          f"{SCHEDULE_MAX})")
    p.add_argument("--batches", type=int, default=40, help="batches per round")
    p.add_argument("--rounds", type=int, default=5, help="pairs of rounds counted")
    p.add_argument("--puts", type=int, default=0, help="puts marked inside each batch")
    p.add_argument("--keys", type=int, default=100, help="keys in the replica's state")
    args = p.parse_args()

    replica = start_replica()
    client = Client()
    answers: queue.SimpleQueue = queue.SimpleQueue()
    link = ProcessLink(ProcessConfig("kv1", DIP, oob.OOB_PORT), 10, answers.put)
    try:
        for _ in range(args.keys):
            client.put(0)
        at = 1
        ratios, cpu_ratios, cuts_seen = [], [], []
        for round_ in range(args.rounds + 1):   # round 0 warms up and is not counted
            sides = {"per ID": per_id, "runs": by_run}
            order = list(sides) if round_ % 2 else list(reversed(sides))
            rate, cpu = {}, {}
            for side in order:
                cpu_before, taken = cpu_ns([replica]), 0
                started = time.perf_counter()
                for _ in range(args.batches):
                    for i in range(args.puts):   # the state changes inside the batch
                        client.put(next_id(at, (i + 1) * args.batch // (args.puts + 1)))
                    taken += sides[side](link, answers, at, args.batch)
                    at = next_id(at, args.batch)
                elapsed = time.perf_counter() - started
                if taken != args.batches * args.batch:
                    raise SystemExit(f"{side}: {taken} of {args.batches * args.batch} taken")
                rate[side] = taken / elapsed
                cpu[side] = (cpu_ns([replica]) - cpu_before) / 1000 / taken
            if round_:
                ratios.append(rate["runs"] / rate["per ID"])
                cpu_ratios.append(cpu["per ID"] / cpu["runs"])
            print(f"pair {round_} ({order[0]} first): "
                  + ", ".join(f"{side} {rate[side]:8.0f} snapshots/s {cpu[side]:6.2f} us CPU "
                              "each" for side in sides)
                  + (f"; runs/per ID {ratios[-1]:.1f}, CPU per ID/runs {cpu_ratios[-1]:.1f}"
                     if round_ else " (warm-up)"), flush=True)
        link.ask_run("report", next_id(at, -args.batch), args.batch, None)
        cuts_seen = len(answers.get(timeout=10).cuts)
    finally:
        link.close()
        replica.terminate()
        replica.communicate(timeout=10)
    print(json.dumps({
        "batch": args.batch, "batches_per_round": args.batches, "pairs": args.rounds,
        "puts_per_batch": args.puts, "cuts_in_the_last_batch": cuts_seen, "keys": args.keys,
        "rate_ratio_runs_over_per_id": spread(ratios),
        "cpu_ratio_per_id_over_runs": spread(cpu_ratios)}, indent=1))


if __name__ == "__main__":
    main()
