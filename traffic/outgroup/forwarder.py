"""An out-group forwarder: a queue between clients and a VIP that knows
nothing of Beaver, as a message broker or an API gateway outside the
in-group would be.

A client sends it {"op":"forward","to":[ip,port],"request":{...}}; it sends
the request on as its own, and when the answer comes back (however late: a
lock's grant may take a while) passes it to the client as the answer to the
forward.  Many forwards may be outstanding at once.

Run: python -m beaver.traffic.outgroup.forwarder --name f1 --bind IP:PORT [--log PATH]
"""
from __future__ import annotations

import logging
import threading

from beaver.traffic.outgroup.endpoint import Endpoint
from beaver.traffic.outgroup.thirdparty import callback_of

log = logging.getLogger(__name__)


def serve(endpoint: Endpoint, stop: threading.Event) -> dict[str, int]:
    """Forwards until stop; returns counts of what it saw."""
    counts = {"forwards": 0, "answers": 0, "bad": 0}
    pending = {}   # the forwarded request's id -> (client's address, the forward's id)
    while not stop.is_set():
        got = endpoint.receive(0.2)
        if got is None:
            continue
        message, source = got
        if message.get("re") in pending:
            client, forward_id = pending.pop(message["re"])
            endpoint.send(client, {**message, "re": forward_id})
            counts["answers"] += 1
            continue
        try:
            if message.get("op") != "forward":
                raise ValueError(f"not a forward: {message}")
            to, request = callback_of({"callback": {"to": message.get("to"),
                                                    "request": message.get("request")}})
        except ValueError as e:
            counts["bad"] += 1
            log.warning("%s: %s", endpoint.name, e)
            continue
        pending[endpoint.send(to, request)] = (source, message["id"])
        counts["forwards"] += 1
    return counts


def main():
    from beaver.traffic.cli import out_group_endpoint, out_group_parser, print_summary, stop_on_signals
    p = out_group_parser("An out-group forwarder between clients and a VIP.")
    args = p.parse_args()
    stop = stop_on_signals()
    with out_group_endpoint(args) as endpoint:
        counts = serve(endpoint, stop)
    print_summary(args.name, counts)


if __name__ == "__main__":
    main()
