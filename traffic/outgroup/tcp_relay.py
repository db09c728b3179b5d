"""An out-group relay over TCP: relay.py's hidden causality between two TCP
services.  It asks one VIP, and the moment the reply arrives it asks the
other, each on its own connection.

Run: python -m beaver.traffic.outgroup.tcp_relay --name r1 --bind IP --first VIP:PORT
         --then VIP:PORT [--count N] [--log PATH]
(both are key-value stores: the first gets a put, the second a get).
"""
from __future__ import annotations

import itertools
import random
import threading

from beaver.traffic.outgroup.clients import NextRequest, Stats, kv_workload
from beaver.traffic.outgroup.tcp_client import TcpEndpoint


def relay(first: TcpEndpoint, first_request: NextRequest, then: TcpEndpoint,
          then_request: NextRequest, stop: threading.Event, count: int | None = None,
          timeout: float = 1.0) -> Stats:
    """count: how many first->then chains to run (default: until stop)."""
    stats = Stats()
    chains = 0
    while not stop.is_set() and (count is None or chains < count):
        chains += 1
        for endpoint, next_request in ((first, first_request), (then, then_request)):
            stats.sent += 1
            if endpoint.call(next_request(), timeout) is None:
                stats.timeouts += 1
                break
            stats.replies += 1
    return stats


def main():
    from beaver.traffic.cli import (address, event_log, out_group_parser, print_summary, setup_logging,
                      stop_on_signals)
    p = out_group_parser("An out-group relay over TCP: on a reply from one VIP, "
                         "at once a request to another.")
    p.add_argument("--first", type=address, required=True, help="VIP ip:port asked first")
    p.add_argument("--then", type=address, required=True, help="VIP ip:port asked on the reply")
    p.add_argument("--count", type=int, default=None, help="chains to run (default: until SIGTERM)")
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    setup_logging()
    stop = stop_on_signals()
    rng = random.Random(args.seed)
    numbers = itertools.count(1)
    with event_log(args, in_group=False) as log:
        first, then = (TcpEndpoint(args.name, target, args.bind, log, numbers)
                       for target in (args.first, args.then))
        try:
            stats = relay(first, kv_workload(rng, write_ratio=1.0), then,
                          kv_workload(rng, write_ratio=0.0), stop, args.count, args.timeout)
        finally:
            first.close()
            then.close()
    print_summary(args.name, stats.summary())


if __name__ == "__main__":
    main()
