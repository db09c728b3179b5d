"""The anomalous-access use case (Table 3): the detector, "bank requests >
logins" per client, over one snapshot's states of the key-value replicas and
the bank shards.  It is exact on a consistent snapshot; why, and the users it
judges, are in traffic/outgroup/bots.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from beaver.traffic.outgroup.bots import SESSION


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
