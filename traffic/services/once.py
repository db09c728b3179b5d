"""A service's rule that each peer message is applied once, by its ID.

A peer message may change the state (a credit adds money), so one that
arrives twice (a duplicated or replayed datagram) must count once.  IDs are
"<sender>:<n>" with n growing along the sender's messages
(messages.message_id; a restored sender numbers on from its clock, past
every n before).  Per sender, the numbers applied within WINDOW of the
highest are remembered; an older number cannot be told from a repeat, so it
is refused too.  The memory is the transport's, not the service's state: a
restored process starts with none, and its peers, restored with it, send
new IDs.
"""
from __future__ import annotations

from beaver.traffic.messages import Refused

WINDOW = 1 << 16   # of a sender's message numbers: far more than arrive out of order


class AppliedOnce:
    def __init__(self):
        self._highest: dict[str, int] = {}
        self._applied: dict[str, set[int]] = {}   # per sender, numbers within WINDOW or so

    def check(self, message_id: str, sender: str):
        """Records message_id as applied; Refused if it was before, is too old
        to tell, or is no ID of sender's."""
        name, _, number = message_id.rpartition(":")
        if name != sender or not (number.isascii() and number.isdigit()):
            raise Refused(f"{message_id!r} is not an ID of {sender}'s")
        n = int(number)
        highest = self._highest.get(sender, 0)
        applied = self._applied.setdefault(sender, set())
        if n <= highest - WINDOW:
            raise Refused(f"{message_id} is older than {sender}'s last {WINDOW} numbers")
        if n in applied:
            raise Refused(f"{message_id} was applied before")
        applied.add(n)
        if n > highest:
            self._highest[sender] = n
            if len(applied) > 2 * WINDOW:   # now and then: amortized, each number once
                self._applied[sender] = {m for m in applied if m > n - WINDOW}
