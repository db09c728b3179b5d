"""The anomalous-access use case (Table 3): its humans and bots, out-group
clients of the key-value store and the bank (traffic/analysis/anomaly.py
holds the detector).

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

Run a user: python -m beaver.traffic.outgroup.bots --name u1 --bind IP --kv VIP:PORT
                --bank VIP:PORT [--bot] [--count N] [--accounts 100] [--log PATH]
"""
from __future__ import annotations

import random
import threading

from beaver.traffic.runtime.datagrams import Address
from beaver.traffic.outgroup.endpoint import Endpoint

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


def main():
    from beaver.traffic.cli import address, out_group_endpoint, out_group_parser, print_summary, stop_on_signals
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
