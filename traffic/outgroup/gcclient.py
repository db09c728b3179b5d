"""An out-group client of the garbage-collection use case (traffic/services/objects.py).

Each round it creates an object at function A and takes a second reference
to it there, hands that one through an out-group queue (traffic/outgroup/forwarder.py)
to be consumed at function B, and then, after a moment, consumes its own at
B.  Until then the object is live, however few references the in-group sees.

Run: python -m beaver.traffic.outgroup.gcclient --name g1 --bind IP --a VIP:PORT --b VIP:PORT
         --queue IP:PORT [--hold 0.01] [--log PATH]
"""
from __future__ import annotations

import threading

from beaver.traffic.runtime.datagrams import Address
from beaver.traffic.outgroup.endpoint import Endpoint

TIMEOUT = 1.0


def rounds(endpoint: Endpoint, a: Address, b: Address, queue: Address,
           stop: threading.Event, hold: float = 0.01) -> dict[str, int]:
    counts = {"objects": 0, "timeouts": 0}
    while not stop.is_set():
        created = endpoint.call(a, {"op": "create"}, TIMEOUT)
        if created is None or not created.get("ok"):
            counts["timeouts"] += 1
            continue
        counts["objects"] += 1
        ref = created["ref"]
        steps = [(a, {"op": "share", "ref": ref}),
                 (queue, {"op": "forward", "to": list(b),
                          "request": {"op": "consume", "ref": ref}}),
                 (None, None),   # holding its own reference a moment
                 (b, {"op": "consume", "ref": ref})]
        for to, request in steps:
            if to is None:
                stop.wait(hold)
            elif endpoint.call(to, request, TIMEOUT) is None:
                counts["timeouts"] += 1
                break
    return counts


def main():
    from beaver.traffic.cli import address, out_group_endpoint, out_group_parser, print_summary, stop_on_signals
    p = out_group_parser("A client of the functions' object store (out-group).")
    p.add_argument("--a", type=address, required=True, help="function A's VIP ip:port")
    p.add_argument("--b", type=address, required=True, help="function B's VIP ip:port")
    p.add_argument("--queue", type=address, required=True, help="a forwarder ip:port")
    p.add_argument("--hold", type=float, default=0.01,
                   help="seconds its own reference is held after the other's hand-off")
    args = p.parse_args()
    stop = stop_on_signals()
    with out_group_endpoint(args) as endpoint:
        counts = rounds(endpoint, args.a, args.b, args.queue, stop, args.hold)
    print_summary(args.name, counts)


if __name__ == "__main__":
    main()
