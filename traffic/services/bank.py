"""An in-group service: a bank sharded over several processes.

Account "a<i>" lives on shard i mod n.  The SLB may hand a request to any
shard; that shard counts the client's activity (the anomaly use case reads
it) and hands the request to the account's owner.  A transfer debits at the
source's owner and credits the destination's owner by an in-group message,
so money is only ever on an account or on a channel: a consistent snapshot's
total (balances plus credits in flight) is the initial total.

After a transfer the bank may notify a third-party service (out-group) whose
webhook then writes an audit record into another VIP (the key-value store):
a causal chain in-group -> out-group -> in-group through the SLBs.

Requests (JSON, via the VIP):                  replies (DSR, from the owner):
    {"op":"balance","account":"a3"}                {"ok":true,"balance":n}
    {"op":"transfer","src":"a3","dst":"a8","amount":n}   {"ok":true} or
                                                   {"ok":false,"error":"insufficient funds"}

The bank checks what its peers send it, as it checks its clients:
- a credit's amount is an integer above 0, for an account of this shard;
- each peer message (a credit, a request handed on) is applied once, by its
  ID (services/once.py): a repeated ID is refused.
A refused message changes nothing; the runtime counts it ("refused by the
application", in the OOB status and the exit summary).

An injected bug for the integration tests (--lose-every N): one credit in N
to another shard is never sent, though the source was debited.  The shard
keeps the money it lost so in its state's "faults", as the ground truth;
nothing else reads it.

A shard can be rolled back to a snapshot (traffic/runtime/restore.py): its state
names the layout it was taken under (the state's version, the shards in
order, the accounts), and a restore into another layout is refused, since
the accounts would belong to other shards.

Run: python -m beaver.traffic.services.bank --name b1 --dip IP --vip VIP:PORT --peer b2=IP
         --shards b1,b2 [--accounts 100] [--initial 1000] [--lose-every N]
         [--notify IP:PORT --audit VIP:PORT] [--mode beaver] [--log PATH]
         [--restore STORE:ID [--force]]
"""
from __future__ import annotations

from typing import Any, Iterable

from beaver.traffic.oob.protocol import Report

from beaver.traffic.runtime.datagrams import Address
from beaver.traffic.messages import Message, Refused
from beaver.traffic.runtime.udp import Client, Runtime
from beaver.traffic.services.once import AppliedOnce

STATE_VERSION = 1   # of local_state's shape: a restore needs the same


def account(index: int) -> str:
    return f"a{index}"


class BankShard:
    def __init__(self, runtime: Runtime, shards: list[str], accounts: int, initial: int,
                 notify: Address | None = None, audit: Address | None = None,
                 lose_every: int = 0):
        self.runtime = runtime
        self.name = runtime.name
        self.shards = shards
        self.accounts = accounts
        mine = shards.index(self.name)
        self.balances = {account(i): initial for i in range(mine, accounts, len(shards))}
        self.activity: dict[str, int] = {}     # client -> requests it sent here
        self.notify, self.audit = notify, audit
        self.transfers = 0
        self.lose_every = lose_every
        self.credits = 0          # sent to other shards, the lost ones included
        self.credited = 0         # the money they carried
        self.lost = 0             # money the bug lost
        self.applied = AppliedOnce()

    def owner(self, name: Any) -> str | None:
        digits = name[1:] if isinstance(name, str) and name[:1] == "a" else ""
        if not (digits.isascii() and digits.isdigit() and len(digits) <= len(str(self.accounts))):
            return None
        index = int(digits)
        return self.shards[index % len(self.shards)] if index < self.accounts else None

    @staticmethod
    def key(request: Message) -> Any:
        """The account a request is about, which its owner executes."""
        return request.get("account") if request.get("op") == "balance" else request.get("src")

    def on_request(self, message: Message, client: Client):
        who = message.get("client")
        if isinstance(who, str):
            self.activity[who] = self.activity.get(who, 0) + 1
        key = self.key(message)
        owner = self.owner(key)
        if owner is None:
            return self.runtime.reply(client, {"ok": False, "error": f"no account {key!r}"})
        if owner == self.name:
            return self.execute(message, client)
        self.runtime.send(owner, {"op": "execute", "request": message,
                                  "client": client.to_json()})

    def on_peer(self, message: Message, sender: str):
        op = message.get("op")
        if op == "execute":
            request, client = message.get("request"), Client.from_json(message.get("client"))
            if not (isinstance(request, dict) and self.owner(self.key(request)) == self.name):
                raise Refused(f"a request for no account of {self.name}'s")
            self.applied.check(message["id"], sender)
            self.execute(request, client)
        elif op == "credit":
            account, amount = message.get("account"), message.get("amount")
            if self.owner(account) != self.name or type(amount) is not int or amount <= 0:
                raise Refused(f"a credit of {amount!r} to {account!r}")
            self.applied.check(message["id"], sender)
            self.balances[account] += amount
        else:
            raise Refused(f"unknown op {op!r}")

    def execute(self, request: Message, client: Client):
        """A request for an account of this shard."""
        op = request.get("op")
        if op == "balance":
            return self.runtime.reply(client, {"ok": True,
                                               "balance": self.balances[request["account"]]})
        if op != "transfer":
            return self.runtime.reply(client, {"ok": False, "error": f"unknown op {op!r}"})
        src, dst, amount = request["src"], request.get("dst"), request.get("amount")
        if self.owner(dst) is None or type(amount) is not int or amount <= 0:
            return self.runtime.reply(client, {"ok": False, "error": "bad dst or amount"})
        if self.balances[src] < amount:
            return self.runtime.reply(client, {"ok": False, "error": "insufficient funds"})
        self.balances[src] -= amount
        if self.owner(dst) == self.name:
            self.balances[dst] += amount
        else:
            self.credits += 1
            self.credited += amount
            if self.lose_every and self.credits % self.lose_every == 0:
                self.lost += amount
            else:
                self.runtime.send(self.owner(dst),
                                  {"op": "credit", "account": dst, "amount": amount})
        self.transfers += 1
        if self.notify and self.audit:
            audit = {"op": "put", "key": f"audit:{self.name}:{self.transfers}", "value": amount}
            self.runtime.call_out(self.notify, {"op": "notify", "callback": {
                "to": list(self.audit), "request": audit}})
        self.runtime.reply(client, {"ok": True})

    def layout(self) -> dict[str, Any]:
        return {"service": "bank", "version": STATE_VERSION, "shards": list(self.shards),
                "accounts": self.accounts}

    def local_state(self) -> dict[str, Any]:
        return {"service": "bank", "layout": self.layout(), "balances": dict(self.balances),
                "activity": dict(self.activity), "transfers": self.transfers,
                "credits": self.credits, "credited": self.credited,
                "faults": {"lost": self.lost}}

    def restore(self, state: dict[str, Any]):
        """Takes the state of a snapshot of this shard (its layout checked first)."""
        self.balances = dict(state["balances"])
        self.activity = dict(state["activity"])
        self.transfers, self.credits = state["transfers"], state["credits"]
        self.credited = state["credited"]
        self.lost = state["faults"]["lost"]


def snapshot_total(reports: Iterable[Report]) -> int:
    """Money in one snapshot of every shard: balances plus credits in flight."""
    total = 0
    for report in reports:
        total += sum(report.local_state["balances"].values())
        for channel in report.channels.values():
            total += sum(item["message"]["amount"] for item in channel.in_flight
                         if item["message"].get("op") == "credit")
    return total


def main():
    from beaver.traffic.cli import address, at_least, in_group_parser, run_in_group
    p = in_group_parser("A shard of the bank (in-group).")
    p.add_argument("--shards", required=True, help="every shard's name, in order, comma-separated")
    p.add_argument("--accounts", type=at_least(1), default=100)
    p.add_argument("--initial", type=at_least(0), default=1000,
                   help="each account's opening balance")
    p.add_argument("--notify", type=address, default=None, help="third-party service ip:port")
    p.add_argument("--audit", type=address, default=None,
                   help="VIP ip:port of the key-value store the third party writes audits to")
    p.add_argument("--lose-every", type=at_least(0), default=0,
                   help="injected bug: lose one credit to another shard in N (default 0: none)")
    args = p.parse_args()
    shards = args.shards.split(",")
    peers = {name for name, _ in args.peer}
    if args.name not in shards or not set(shards) - {args.name} <= peers:
        p.error("--shards must name this process and only peers besides it")
    run_in_group(args, lambda runtime: BankShard(runtime, shards, args.accounts, args.initial,
                                                 args.notify, args.audit, args.lose_every))


if __name__ == "__main__":
    main()
