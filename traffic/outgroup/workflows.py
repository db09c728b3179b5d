"""Out-group workflows of the deadlock use case, clients of two lock managers
(traffic/services/locks.py) behind VIPs A and B.

An ordinary workflow takes L0 at A, then, holding it, L1 at B (sometimes
through an out-group forwarder: traffic/outgroup/forwarder.py), works a moment with
both, releases L0, works a moment more with L1 and releases it.  Every
ordinary workflow takes its locks in that one order, so they contend but
never deadlock: a cycle among them in a snapshot's wait-for graph is a
phantom.  (One that a cut too late at A and too early at B would show: w1
waits at B for w2, w2 releases L1 and comes back to A, where w1 still holds
L0.)

A deadlocking pair injects a real deadlock once every period, on locks of
its own: at the period's start side a takes D0 at A and side b D1 at B; a
moment later each asks for the other's lock, and waits.  Each gives up
after --wait seconds: it cancels the wait and releases what it holds.  The
pair's ids of those messages (printed in its summary, "episodes") let the
experiment date each deadlock from the managers' logs.

Run: python -m beaver.traffic.outgroup.workflows --name w1 --bind IP --a VIP:PORT --b VIP:PORT
         [--pair a|b [--period 1.0] [--wait 0.5]] [--via IP:PORT --via-ratio 0.5]
         [--log PATH]
"""
from __future__ import annotations

import random
import threading
import time

from beaver.traffic.runtime.datagrams import Address
from beaver.traffic.outgroup.endpoint import Endpoint

TIMEOUT = 2.0     # an ordinary acquire this late is given up on


def ordinary(endpoint: Endpoint, a: Address, b: Address, stop: threading.Event,
             hold: float = 0.01, via: Address | None = None, via_ratio: float = 0.0,
             rng: random.Random | None = None) -> dict[str, int]:
    rng = rng or random.Random()
    counts = {"rounds": 0, "via": 0, "timeouts": 0}
    while not stop.is_set():
        counts["rounds"] += 1
        held = []
        for lock, manager in (("L0", a), ("L1", b)):
            request = {"op": "acquire", "lock": lock, "workflow": endpoint.name}
            if manager == b and via is not None and rng.random() < via_ratio:
                counts["via"] += 1
                reply = endpoint.call(via, {"op": "forward", "to": list(b),
                                            "request": request}, TIMEOUT)
            else:
                reply = endpoint.call(manager, request, TIMEOUT)
            if reply is None:
                counts["timeouts"] += 1
                endpoint.call(manager, {"op": "cancel", "lock": lock}, TIMEOUT)
                break
            held.append((lock, manager))
        for lock, manager in held:
            stop.wait(hold)
            endpoint.call(manager, {"op": "release", "lock": lock}, TIMEOUT)
    return counts


def deadlocking(endpoint: Endpoint, side: str, a: Address, b: Address,
                stop: threading.Event, period: float = 1.0, wait: float = 0.5,
                ask_after: float = 0.05) -> list[dict]:
    """One deadlock per period (both sides agree on the period by the clock);
    returns the episodes: the ids of the wait and of what ended it."""
    first, second = (("D0", a), ("D1", b)) if side == "a" else (("D1", b), ("D0", a))
    episodes = []
    while not stop.is_set():
        start = (int(time.time() / period) + 1) * period
        if stop.wait(start - time.time()):
            break
        if endpoint.call(first[1], {"op": "acquire", "lock": first[0]}, TIMEOUT) is None:
            endpoint.call(first[1], {"op": "cancel", "lock": first[0]}, TIMEOUT)
            continue
        stop.wait(max(0.0, start + ask_after - time.time()))
        wait_id, granted = endpoint.request(second[1], {"op": "acquire", "lock": second[0]},
                                            wait)
        ends = [endpoint.request(second[1], {"op": "cancel", "lock": second[0]}, TIMEOUT)[0],
                endpoint.request(first[1], {"op": "release", "lock": first[0]}, TIMEOUT)[0]]
        episodes.append({"period": round(start / period), "wait": wait_id, "ends": ends,
                         "granted": granted is not None})
    return episodes


def main():
    from beaver.traffic.cli import address, out_group_endpoint, out_group_parser, print_summary, stop_on_signals
    p = out_group_parser("A workflow that takes locks at two lock managers (out-group).")
    p.add_argument("--a", type=address, required=True, help="lock manager A's VIP ip:port")
    p.add_argument("--b", type=address, required=True, help="lock manager B's VIP ip:port")
    p.add_argument("--pair", choices=("a", "b"), default=None,
                   help="a side of a deadlocking pair (default: an ordinary workflow)")
    p.add_argument("--period", type=float, default=1.0, help="pair: seconds between deadlocks")
    p.add_argument("--wait", type=float, default=0.5, help="pair: seconds before giving up")
    p.add_argument("--hold", type=float, default=0.01,
                   help="ordinary: seconds of work before each release")
    p.add_argument("--via", type=address, default=None, help="ordinary: a forwarder ip:port")
    p.add_argument("--via-ratio", type=float, default=0.5,
                   help="ordinary: share of B's acquires sent through the forwarder")
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    stop = stop_on_signals()
    with out_group_endpoint(args) as endpoint:
        if args.pair:
            summary = {"pair": args.pair, "episodes": deadlocking(
                endpoint, args.pair, args.a, args.b, stop, args.period, args.wait)}
        else:
            summary = ordinary(endpoint, args.a, args.b, stop, args.hold, args.via,
                               args.via_ratio, random.Random(args.seed))
    print_summary(args.name, summary)


if __name__ == "__main__":
    main()
