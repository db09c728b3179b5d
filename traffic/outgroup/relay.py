"""An out-group relay: the hidden causality of the seed's Figures 3 and 5.

It asks one VIP, and the moment the (DSR) reply arrives it asks another: the
reply's send at the first in-group process happens-before the second
request's receive at another, through a process Beaver cannot instrument.
The gap between the reply and the next request is the relay's share of
tau_min, the shortest external causal chain.

Run: python -m beaver.traffic.outgroup.relay --name r1 --bind IP --first VIP:PORT
         --first-service kv --then VIP:PORT --then-service bank [--count N]
         [--interval S] [--log PATH]
"""
from __future__ import annotations

import random
import threading

from beaver.traffic.outgroup.clients import NextRequest, Stats, bank_workload, kv_workload
from beaver.traffic.runtime.datagrams import Address
from beaver.traffic.outgroup.endpoint import Endpoint


def relay(endpoint: Endpoint, first: Address, first_request: NextRequest, then: Address,
          then_request: NextRequest, stop: threading.Event, count: int | None = None,
          timeout: float = 1.0, interval: float = 0.0) -> Stats:
    """count: how many first->then chains to run (default: until stop);
    interval: seconds between one chain's end and the next one's start."""
    stats = Stats()
    chains = 0
    while not stop.is_set() and (count is None or chains < count):
        if chains and interval:
            stop.wait(interval)
        chains += 1
        for target, next_request in ((first, first_request), (then, then_request)):
            stats.sent += 1
            if endpoint.call(target, next_request(), timeout) is None:
                stats.timeouts += 1
                break
            stats.replies += 1
    return stats


def main():
    from beaver.traffic.cli import address, out_group_endpoint, out_group_parser, print_summary, stop_on_signals
    p = out_group_parser("An out-group relay: on a reply from one VIP, "
                         "at once a request to another.")
    p.add_argument("--first", type=address, required=True, help="VIP ip:port asked first")
    p.add_argument("--first-service", choices=["kv", "bank"], required=True)
    p.add_argument("--then", type=address, required=True, help="VIP ip:port asked on the reply")
    p.add_argument("--then-service", choices=["kv", "bank"], required=True)
    p.add_argument("--count", type=int, default=None, help="chains to run (default: until SIGTERM)")
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--interval", type=float, default=0.0,
                   help="seconds between chains (default 0: the next at once)")
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    stop = stop_on_signals()
    rng = random.Random(args.seed)
    workloads = {"kv": kv_workload, "bank": bank_workload}
    with out_group_endpoint(args) as endpoint:
        stats = relay(endpoint, args.first, workloads[args.first_service](rng), args.then,
                      workloads[args.then_service](rng), stop, args.count, args.timeout,
                      args.interval)
    print_summary(args.name, stats.summary())


if __name__ == "__main__":
    main()
