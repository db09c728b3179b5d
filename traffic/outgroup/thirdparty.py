"""A third-party service the in-group calls out to: a webhook notifier.

An in-group process sends it {"op":"notify","callback":{"to":[ip,port],
"request":{...}}}; it answers only through the callback, a new request sent
to "to" (a VIP), so the answer enters the in-group through an SLB like any
inbound traffic.  (A direct answer to the caller's DIP would bypass the
slbs, which Beaver's model rules out.)  The in-group's replies to the
callbacks come back here and are logged like everything else.

Run: python -m beaver.traffic.outgroup.thirdparty --name tp --bind IP:PORT [--delay 0] [--log PATH]
"""
from __future__ import annotations

import logging
import threading
from typing import Any

from beaver.traffic.runtime.datagrams import Address
from beaver.traffic.outgroup.endpoint import Endpoint

log = logging.getLogger(__name__)


def callback_of(message: dict[str, Any]) -> tuple[Address, dict[str, Any]]:
    """Where and what to send for a notify; ValueError if it is not one."""
    callback = message.get("callback")
    try:
        ip, port = callback["to"]
        request = callback["request"]
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"notify without a callback {{to: [ip, port], request}}: {message}")
    if not (isinstance(ip, str) and type(port) is int and isinstance(request, dict)):
        raise ValueError(f"bad callback {callback}")
    return (ip, port), dict(request)


def serve(endpoint: Endpoint, stop: threading.Event, delay: float = 0.0) -> dict[str, int]:
    """Answers notifies until stop; returns counts of what it saw."""
    counts = {"notifies": 0, "callbacks": 0, "replies": 0, "bad": 0}
    while not stop.is_set():
        got = endpoint.receive(0.2)
        if got is None:
            continue
        message = got[0]
        if "re" in message:
            counts["replies"] += 1
            continue
        if message.get("op") != "notify":
            counts["bad"] += 1
            log.warning("%s: not a notify: %s", endpoint.name, message)
            continue
        counts["notifies"] += 1
        try:
            to, request = callback_of(message)
        except ValueError as e:
            counts["bad"] += 1
            log.warning("%s: %s", endpoint.name, e)
            continue
        if delay:
            stop.wait(delay)
        endpoint.send(to, request)
        counts["callbacks"] += 1
    return counts


def main():
    from beaver.traffic.cli import out_group_endpoint, out_group_parser, print_summary, stop_on_signals
    p = out_group_parser("A third-party webhook service (out-group).")
    p.add_argument("--delay", type=float, default=0.0, help="seconds before each callback")
    args = p.parse_args()
    stop = stop_on_signals()
    with out_group_endpoint(args) as endpoint:
        counts = serve(endpoint, stop, args.delay)
    print_summary(args.name, counts)


if __name__ == "__main__":
    main()
