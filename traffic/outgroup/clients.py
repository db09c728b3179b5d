"""Out-group clients of the in-group services: closed-loop (one request at a
time, the next after the reply) and open-loop (a fixed rate, replies or not).

Run: python -m beaver.traffic.outgroup.clients --name c1 --bind IP --target VIP:PORT
         --service kv|bank --loop closed|open [--count N] [--rate R]
         [--write-ratio 0.5] [--keys 100] [--accounts 100] [--log PATH]
Without --count it runs until SIGTERM; it prints a JSON summary at the end.
"""
from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from beaver.traffic.runtime.datagrams import Address
from beaver.traffic.messages import Message
from beaver.traffic.outgroup.endpoint import Endpoint

NextRequest = Callable[[], Message]


def kv_workload(rng: random.Random, keys: int = 100, write_ratio: float = 0.5) -> NextRequest:
    def next_request() -> Message:
        key = f"k{rng.randrange(keys)}"
        if rng.random() < write_ratio:
            return {"op": "put", "key": key, "value": rng.randrange(1 << 30)}
        return {"op": "get", "key": key}
    return next_request


def bank_workload(rng: random.Random, accounts: int = 100,
                  write_ratio: float = 0.5) -> NextRequest:
    def next_request() -> Message:
        src = f"a{rng.randrange(accounts)}"
        if rng.random() < write_ratio:
            return {"op": "transfer", "src": src, "dst": f"a{rng.randrange(accounts)}",
                    "amount": rng.randint(1, 10)}
        return {"op": "balance", "account": src}
    return next_request


@dataclass
class Stats:
    sent: int = 0
    replies: int = 0
    timeouts: int = 0
    latencies_us: list[int] = field(default_factory=list)   # closed loop, one per reply
    started: float = field(default_factory=time.monotonic)

    def summary(self) -> dict:
        """Counts, throughput and latency percentiles, for the JSON summary."""
        elapsed = time.monotonic() - self.started
        latencies = sorted(self.latencies_us)

        def percentile(q: float) -> int | None:
            return latencies[min(len(latencies) - 1, int(q * len(latencies)))] \
                if latencies else None
        return {"sent": self.sent, "replies": self.replies, "timeouts": self.timeouts,
                "elapsed_s": round(elapsed, 3),
                "throughput": round(self.replies / elapsed, 1) if elapsed > 0 else 0.0,
                "latency_p50_us": percentile(0.50), "latency_p99_us": percentile(0.99)}


def closed_loop(endpoint: Endpoint, target: Address, next_request: NextRequest,
                stop: threading.Event, count: int | None = None, timeout: float = 1.0,
                think: float = 0.0) -> Stats:
    stats = Stats()
    while not stop.is_set() and (count is None or stats.sent < count):
        started = time.monotonic()
        reply = endpoint.call(target, next_request(), timeout)
        stats.sent += 1
        if reply is None:
            stats.timeouts += 1
        else:
            stats.replies += 1
            stats.latencies_us.append(int((time.monotonic() - started) * 1e6))
        if think:
            stop.wait(think)
    return stats


def open_loop(endpoint: Endpoint, target: Address, next_request: NextRequest,
              stop: threading.Event, rate: float, count: int | None = None,
              linger: float = 1.0) -> Stats:
    """Sends at `rate` per second; collects replies until `linger` s after the last send."""
    stats = Stats()
    sending = threading.Event()
    sending.set()

    def collect():
        sending_ended = None
        while sending_ended is None or time.monotonic() - sending_ended < linger:
            if endpoint.receive(0.1) is not None:
                stats.replies += 1
            if sending_ended is None and not sending.is_set():
                sending_ended = time.monotonic()

    collector = threading.Thread(target=collect, daemon=True)
    collector.start()
    start = time.monotonic()
    while not stop.is_set() and (count is None or stats.sent < count):
        delay = start + stats.sent / rate - time.monotonic()
        if delay > 0 and stop.wait(delay):
            break
        endpoint.send(target, next_request())
        stats.sent += 1
    sending.clear()
    collector.join()
    stats.timeouts = stats.sent - stats.replies
    return stats


def main():
    from beaver.traffic.cli import address, out_group_endpoint, out_group_parser, print_summary, stop_on_signals
    p = out_group_parser("An out-group client of a service's VIP.")
    p.add_argument("--target", type=address, required=True, help="VIP ip:port")
    p.add_argument("--service", choices=["kv", "bank"], required=True)
    p.add_argument("--loop", choices=["closed", "open"], default="closed")
    p.add_argument("--count", type=int, default=None,
                   help="requests to send (default: until SIGTERM)")
    p.add_argument("--rate", type=float, default=100.0, help="open loop: requests per second")
    p.add_argument("--timeout", type=float, default=1.0, help="closed loop: reply timeout, s")
    p.add_argument("--think", type=float, default=0.0,
                   help="closed loop: pause between requests, s")
    p.add_argument("--write-ratio", type=float, default=0.5)
    p.add_argument("--keys", type=int, default=100)
    p.add_argument("--accounts", type=int, default=100)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    stop = stop_on_signals()
    rng = random.Random(args.seed)
    next_request = (kv_workload(rng, args.keys, args.write_ratio) if args.service == "kv"
                    else bank_workload(rng, args.accounts, args.write_ratio))
    with out_group_endpoint(args) as endpoint:
        if args.loop == "closed":
            stats = closed_loop(endpoint, args.target, next_request, stop, args.count,
                                args.timeout, args.think)
        else:
            stats = open_loop(endpoint, args.target, next_request, stop, args.rate, args.count)
    print_summary(args.name, stats.summary())


if __name__ == "__main__":
    main()
