"""An in-group service: a serverless function with its part of the object
store, for the garbage-collection use case.

A function creates objects ("<function>:<n>", stored where created) and
hands out references to them, which travel through out-group clients and
queues that know nothing of Beaver.  Each function counts, per object, the
references its own requests made and used up: +1 for a create or a share,
-1 for a consume.  No one process knows an object's count; a snapshot's
count of it is the sum over every function's state (traffic/analysis/gc.py).

    {"op":"create"}            {"ok":true,"ref":o}  a new object, one reference
    {"op":"share","ref":o}     {"ok":true,"ref":o}  one more reference to o
    {"op":"consume","ref":o}   {"ok":true}          a reference used up

It also counts the consumes it served, per object: the ground truth of
which references were still to be used.

Run: python -m beaver.traffic.services.objects --name fa --dip IP --vip VIP:PORT
         [--mode beaver] [--log PATH]
"""
from __future__ import annotations

from typing import Any

from beaver.traffic.messages import Message
from beaver.traffic.runtime.udp import Client, Runtime


class ObjectFunction:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.name = runtime.name
        self.created = 0                      # objects "<name>:1" .. "<name>:<created>"
        self.counts: dict[str, int] = {}      # any object -> references made minus used, here
        self.consumed: dict[str, int] = {}    # any object -> consumes served here

    def on_request(self, message: Message, client: Client):
        op, ref = message.get("op"), message.get("ref")
        if op == "create":
            self.created += 1
            ref = f"{self.name}:{self.created}"
        elif op not in ("share", "consume") or not isinstance(ref, str):
            return self.runtime.reply(client, {"ok": False, "error": f"bad {op!r} of {ref!r}"})
        self.counts[ref] = self.counts.get(ref, 0) + (-1 if op == "consume" else 1)
        if op == "consume":
            self.consumed[ref] = self.consumed.get(ref, 0) + 1
            return self.runtime.reply(client, {"ok": True})
        self.runtime.reply(client, {"ok": True, "ref": ref})

    def on_peer(self, message: Message, sender: str):
        raise ValueError(f"a function has no peers ({sender} sent {message})")

    def local_state(self) -> dict[str, Any]:
        return {"service": "gc", "function": self.name, "created": self.created,
                "counts": dict(self.counts), "consumed": dict(self.consumed)}


def main():
    from beaver.traffic.cli import in_group_parser, run_in_group
    args = in_group_parser("A function with its part of the object store (in-group).") \
        .parse_args()
    run_in_group(args, ObjectFunction)


if __name__ == "__main__":
    main()
