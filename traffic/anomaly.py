"""The anomalous-access use case (Table 3): bots, humans and the detector.

A human logs in before every bank request: it increments its session
counter "session:<name>" in the key-value store, and on the reply asks the
bank.  A bot goes at the bank first, touching accounts it never logged in
for, and logs in only after every second request to look busy:

    human: login, bank, login, bank, ...      (bank requests <= logins, always)
    bot:   bank, bank, login, bank, bank, ... (bank requests >  logins, always)

Both are closed loops, so the requests of one user that a consistent cut
contains are a prefix of its sequence, and the detector, "bank requests >
logins", is exact on any consistent snapshot: no false positive (a human's
bank request in the cut brings its login with it), no false negative (a
bot's first bank request precedes its first login).  An inconsistent cut
breaks both: a human's bank request without the login that caused it
(through the human, out of the in-group's sight) is a false positive; a
bot's later login recorded while its earlier bank requests are not is a
false negative.

Run a user: python -m beaver.traffic.anomaly --name u1 --bind IP --kv VIP:PORT
                --bank VIP:PORT [--bot] [--count N] [--accounts 100] [--log PATH]
"""
from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from typing import Any, Mapping

from .datagrams import Address
from .outgroup import Endpoint

SESSION = "session:"
HUMAN_PLAN = ("login", "bank")
BOT_PLAN = ("bank", "bank", "login")


def run_user(endpoint: Endpoint, kv: Address, bank: Address, bot: bool,
             stop: threading.Event, count: int | None = None, accounts: int = 100,
             rng: random.Random | None = None, timeout: float = 1.0) -> int:
    """Sends `count` requests (default: until stop); returns how many timed out.
    The plan moves on only after a reply: a timed-out step is sent again, which
    can only add logins for a human and bank requests for a bot."""
    rng = rng or random.Random()
    plan = BOT_PLAN if bot else HUMAN_PLAN
    timeouts = sent = done = 0
    while not stop.is_set() and (count is None or sent < count):
        if plan[done % len(plan)] == "login":
            target, request = kv, {"op": "incr", "key": SESSION + endpoint.name}
        elif bot:   # touches many accounts, moving money around
            target, request = bank, {"op": "transfer", "src": f"a{rng.randrange(accounts)}",
                                     "dst": f"a{rng.randrange(accounts)}", "amount": 1}
        else:
            target, request = bank, {"op": "balance", "account": f"a{rng.randrange(accounts)}"}
        sent += 1
        if endpoint.call(target, request, timeout) is None:
            timeouts += 1
        else:
            done += 1
    return timeouts


@dataclass(frozen=True)
class Detection:
    logins: dict[str, int]       # per client, from the key-value replicas
    requests: dict[str, int]     # per client, bank requests from the bank shards

    @property
    def seen(self) -> set[str]:
        return set(self.logins) | set(self.requests)

    @property
    def flagged(self) -> set[str]:
        return {c for c in self.seen if self.requests.get(c, 0) > self.logins.get(c, 0)}


def detect(states: Mapping[str, Any]) -> Detection:
    """Over one snapshot's local states (process -> state) of the key-value
    replicas and bank shards.  A login counts once, at the replica that took
    it: counters are merged across replicas by max per replica."""
    per_replica: dict[str, dict[str, int]] = {}
    requests: dict[str, int] = {}
    for state in states.values():
        if state.get("service") == "kv":
            for key, counts in state["counters"].items():
                if key.startswith(SESSION):
                    merged = per_replica.setdefault(key[len(SESSION):], {})
                    for replica, count in counts.items():
                        merged[replica] = max(merged.get(replica, 0), count)
        elif state.get("service") == "bank":
            for client, count in state["activity"].items():
                requests[client] = requests.get(client, 0) + count
    logins = {client: sum(counts.values()) for client, counts in per_replica.items()}
    return Detection(logins, requests)


def score(detection: Detection, bots: set[str]) -> dict[str, int]:
    """True/false positives/negatives over the clients the snapshot saw."""
    seen, flagged = detection.seen, detection.flagged
    return {"tp": len(flagged & bots), "fp": len(flagged - bots),
            "fn": len((seen - flagged) & bots), "tn": len(seen - flagged - bots)}


def main():
    from .cli import address, out_group_endpoint, out_group_parser, print_summary, stop_on_signals
    p = out_group_parser("A user of the anomalous-access use case: a human or a bot.")
    p.add_argument("--kv", type=address, required=True, help="key-value store VIP ip:port")
    p.add_argument("--bank", type=address, required=True, help="bank VIP ip:port")
    p.add_argument("--bot", action="store_true", help="behave as a bot")
    p.add_argument("--count", type=int, default=None, help="requests (default: until SIGTERM)")
    p.add_argument("--accounts", type=int, default=100)
    p.add_argument("--timeout", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=None)
    args = p.parse_args()
    stop = stop_on_signals()
    with out_group_endpoint(args) as endpoint:
        timeouts = run_user(endpoint, args.kv, args.bank, args.bot, stop, args.count,
                            args.accounts, random.Random(args.seed), args.timeout)
    print_summary(args.name, {"bot": args.bot, "timeouts": timeouts})


if __name__ == "__main__":
    main()
