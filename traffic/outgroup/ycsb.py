"""A YCSB-like closed-loop client of the key-value store over TCP, as the
paper's Fig. 14b ran YCSB against Cassandra: one request at a time on one
connection, keys drawn from a Zipfian distribution, YCSB's core workloads:

    A   50 % reads, 50 % updates       (update heavy)
    B   95 % reads, 5 % updates        (read mostly)
    C   reads only                     (read only)
    E   95 % scans, 5 % updates        (short ranges: a scan of 1 to
        --max-scan keys, uniform, from a Zipfian key; YCSB inserts there)

Run: python -m beaver.traffic.outgroup.ycsb --name c1 --bind IP --target VIP:PORT
         [--workload A|B|C|E | --read-ratio 0.5] [--keys 1000] [--zipf 0.99]
         [--max-scan 100] [--seconds S] [--log PATH]
(--read-ratio without --workload: reads and updates in that mix).  Until
SIGTERM or --seconds; prints a JSON summary (clients.Stats) at the end.
"""
from __future__ import annotations

import bisect
import itertools
import random
import threading
import time

from beaver.traffic.outgroup.clients import Stats
from beaver.traffic.messages import Message
from beaver.traffic.outgroup.tcp_client import TcpEndpoint
from beaver.traffic.services.kvstore import MAX_SCAN

# workload -> (share of reads, share of scans); the rest are updates
WORKLOADS = {"A": (0.5, 0.0), "B": (0.95, 0.0), "C": (1.0, 0.0), "E": (0.0, 0.95)}


class Zipfian:
    """Key ranks 0..n-1 with P(rank k) proportional to 1 / (k+1)^theta; the
    ranks are scattered over the key space (as YCSB's scrambled Zipfian), so
    the hot keys are not neighbours."""

    def __init__(self, n: int, theta: float, rng: random.Random):
        weights = [1.0 / (k + 1) ** theta for k in range(n)]
        self._cumulative = list(itertools.accumulate(weights))
        self._keys = list(range(n))
        rng.shuffle(self._keys)
        self._rng = rng

    def next(self) -> int:
        u = self._rng.random() * self._cumulative[-1]
        return self._keys[min(bisect.bisect_left(self._cumulative, u), len(self._keys) - 1)]


def workload(rng: random.Random, keys: int, theta: float, read_ratio: float,
             scan_ratio: float = 0.0, max_scan: int = MAX_SCAN):
    """The next request, each call: a read with read_ratio, a scan of 1 to
    max_scan keys with scan_ratio, else an update."""
    zipf = Zipfian(keys, theta, rng)

    def next_request() -> Message:
        key = f"user{zipf.next()}"
        roll = rng.random()
        if roll < read_ratio:
            return {"op": "get", "key": key}
        if roll < read_ratio + scan_ratio:
            return {"op": "scan", "key": key, "count": rng.randint(1, max_scan)}
        return {"op": "put", "key": key, "value": rng.randrange(1 << 30)}
    return next_request


def closed_loop(endpoint: TcpEndpoint, next_request, stop: threading.Event,
                seconds: float | None, timeout: float) -> Stats:
    stats = Stats()
    end = None if seconds is None else time.monotonic() + seconds
    while not stop.is_set() and (end is None or time.monotonic() < end):
        started = time.monotonic()
        reply = endpoint.call(next_request(), timeout)
        stats.sent += 1
        if reply is None:
            stats.timeouts += 1
        else:
            stats.replies += 1
            stats.latencies_us.append(int((time.monotonic() - started) * 1e6))
    return stats


def main():
    from beaver.traffic.cli import (address, event_log, out_group_parser, print_summary, setup_logging,
                      stop_on_signals)
    p = out_group_parser("A YCSB-like closed-loop client of the key-value store over TCP.")
    p.add_argument("--target", type=address, required=True, help="VIP ip:port")
    p.add_argument("--workload", choices=sorted(WORKLOADS), default=None,
                   help="YCSB's core workload (overrides --read-ratio)")
    p.add_argument("--read-ratio", type=float, default=0.5)
    p.add_argument("--max-scan", type=int, choices=range(1, MAX_SCAN + 1), default=MAX_SCAN,
                   metavar=f"1..{MAX_SCAN}", help=f"longest scan, keys (default {MAX_SCAN})")
    p.add_argument("--keys", type=int, default=1000)
    p.add_argument("--zipf", type=float, default=0.99, help="Zipfian constant (YCSB: 0.99)")
    p.add_argument("--seconds", type=float, default=None, help="default: until SIGTERM")
    p.add_argument("--timeout", type=float, default=1.0, help="reply timeout, s")
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    setup_logging()
    stop = stop_on_signals()
    rng = random.Random(args.seed)
    reads, scans = WORKLOADS[args.workload] if args.workload else (args.read_ratio, 0.0)
    with event_log(args, in_group=False) as log:
        bind = address(args.bind) if ":" in args.bind else args.bind
        endpoint = TcpEndpoint(args.name, args.target, bind, log)
        try:
            stats = closed_loop(endpoint, workload(rng, args.keys, args.zipf, reads, scans,
                                                 args.max_scan),
                                stop, args.seconds, args.timeout)
        finally:
            endpoint.close()
    print_summary(args.name, {**stats.summary(), "connections": endpoint.connections})


if __name__ == "__main__":
    main()
