"""An in-group service: a lock manager, for the deadlock-detection use case.

It holds the locks it is asked about for out-group workflows, granting each
to one workflow at a time and queueing the others in order.  A queued
acquire is answered later, when the lock passes to it.  Its local state is
its part of the wait-for graph: who holds each lock, who waits for it.

Requests (JSON, via the VIP; "workflow" names who asks, else the sender):
    {"op":"acquire","lock":L}   {"ok":true,"granted":L}   now or when its turn comes
    {"op":"release","lock":L}   {"ok":true}               passes L to the next waiter
    {"op":"cancel","lock":L}    {"ok":true}               withdraws a wait, or releases
anything else                   {"ok":false,"error":".."}

Run: python -m beaver.traffic.services.locks --name la --dip IP --vip VIP:PORT [--mode beaver]
         [--log PATH]
"""
from __future__ import annotations

from typing import Any

from beaver.traffic.messages import Message
from beaver.traffic.runtime.udp import Client, Runtime


class LockManager:
    def __init__(self, runtime: Runtime):
        self.runtime = runtime
        self.holders: dict[str, tuple[str, str]] = {}           # lock -> (workflow, request)
        self.waiters: dict[str, list[tuple[str, Client]]] = {}   # lock -> queue, in order

    def on_request(self, message: Message, client: Client):
        op, lock = message.get("op"), message.get("lock")
        workflow = message.get("workflow", message.get("client"))
        if not (isinstance(lock, str) and isinstance(workflow, str)):
            return self.runtime.reply(client, {"ok": False, "error": "lock and workflow: strings"})
        if op == "acquire":
            holder = self.holders.get(lock)
            if holder is None or holder[0] == workflow:
                self.holders[lock] = (workflow, client.request_id)
                return self.runtime.reply(client, {"ok": True, "granted": lock})
            self.waiters.setdefault(lock, []).append((workflow, client))
            return None
        if op in ("release", "cancel"):
            queue = self.waiters.get(lock, [])
            queue[:] = [(w, c) for w, c in queue if w != workflow]
            if self.holders.get(lock, ("",))[0] == workflow:
                self._pass(lock)
            return self.runtime.reply(client, {"ok": True})
        self.runtime.reply(client, {"ok": False, "error": f"unknown op {op!r}"})

    def _pass(self, lock: str):
        """The lock to its next waiter, answering that waiter's acquire now."""
        queue = self.waiters.get(lock)
        if not queue:
            del self.holders[lock]
            return
        workflow, client = queue.pop(0)
        self.holders[lock] = (workflow, client.request_id)
        self.runtime.reply(client, {"ok": True, "granted": lock})

    def on_peer(self, message: Message, sender: str):
        raise ValueError(f"a lock manager has no peers ({sender} sent {message})")

    def local_state(self) -> dict[str, Any]:
        return {"service": "locks",
                "holders": {lock: list(h) for lock, h in self.holders.items()},
                "waiters": {lock: [[w, c.request_id] for w, c in queue]
                            for lock, queue in self.waiters.items() if queue}}


def main():
    from beaver.traffic.cli import in_group_parser, run_in_group
    args = in_group_parser("A lock manager (in-group).").parse_args()
    run_in_group(args, LockManager)


if __name__ == "__main__":
    main()
