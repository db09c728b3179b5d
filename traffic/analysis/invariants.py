"""The integration-testing use case: invariants of the bank and the key-value
store, checked on one snapshot's reports (process -> Report).

  conserved   the bank's money, balances plus credits in flight, is the
              opening total
  replicas    the key-value replicas agree once each has applied the
              updates in flight to it
  audits      every audit record the third party wrote into the store
              ("audit:<shard>:<n>") follows a transfer the shard has made:
              its n-th one (the cause reached the store through the
              out-group, out of the in-group's sight)

Each holds on every consistent snapshot of a correct system; a violation
is an alarm.  The applications' "faults" (the injected bugs' own record)
are never read here: they are the scorer's ground truth (faults_at).
"""
from __future__ import annotations

from typing import Mapping

from beaver.traffic.oob.protocol import Report

from beaver.traffic.services.bank import snapshot_total
from beaver.traffic.services.kvstore import Counters, Registers, merge, superseded

AUDIT = "audit:"
INVARIANTS = ("conserved", "replicas", "audits")


def of_service(reports: Mapping[str, Report], service: str) -> dict[str, Report]:
    return {p: r for p, r in sorted(reports.items())
            if isinstance(r.local_state, dict) and r.local_state.get("service") == service}


def conserved(reports: Mapping[str, Report], opening_total: int) -> list[str]:
    total = snapshot_total(of_service(reports, "bank").values())
    return [] if total == opening_total else [f"total {total}, opened with {opening_total}"]


def merged_state(report: Report) -> tuple[Registers, Counters]:
    """A replica's registers and counters once the updates in flight to it apply."""
    state = report.local_state
    registers = {k: (v, tuple(version)) for k, (v, version) in state["registers"].items()}
    counters = {k: dict(counts) for k, counts in state["counters"].items()}
    for channel in report.channels.values():
        for item in channel.in_flight:
            merge(registers, counters, item["message"])
    return registers, counters


def replicas(reports: Mapping[str, Report]) -> list[str]:
    merged = {name: merged_state(report) for name, report in of_service(reports, "kv").items()}
    violations = []
    names = list(merged)
    for other in names[1:]:
        for part, what in ((0, "register"), (1, "counter")):
            first, second = merged[names[0]][part], merged[other][part]
            for key in sorted(set(first) | set(second)):
                if first.get(key) != second.get(key):
                    violations.append(f"{what} {key}: {names[0]} {first.get(key)}, "
                                      f"{other} {second.get(key)}")
    return violations


def orphaned(registers: Mapping[str, object], transfers: Mapping[str, int]) -> list[str]:
    """The audit keys among a replica's registers that refer to a transfer
    its shard has not made (transfers: shard -> how many it made)."""
    found = []
    for key in sorted(registers):
        if key.startswith(AUDIT):
            shard, _, number = key[len(AUDIT):].rpartition(":")
            if shard in transfers and int(number) > transfers[shard]:
                found.append(key)
    return found


def audits(reports: Mapping[str, Report]) -> list[str]:
    transfers = {name: r.local_state["transfers"]
                 for name, r in of_service(reports, "bank").items()}
    violations = []
    for name, report in of_service(reports, "kv").items():
        for key in orphaned(report.local_state["registers"], transfers):
            shard = key[len(AUDIT):].rpartition(":")[0]
            violations.append(f"{name} holds {key}, {shard} made {transfers[shard]} transfers")
    return violations


def check(reports: Mapping[str, Report], opening_total: int) -> dict[str, list[str]]:
    """Every invariant's violations (empty: it holds)."""
    return {"conserved": conserved(reports, opening_total), "replicas": replicas(reports),
            "audits": audits(reports)}


def faults_at(reports: Mapping[str, Report]) -> dict[str, int]:
    """The injected bugs' effects inside the cut, per invariant they break:
    money lost, and replication updates dropped that neither the replica's
    state nor an update in flight to it has superseded."""
    lost = sum(r.local_state["faults"]["lost"] for r in of_service(reports, "bank").values())
    dropped = 0
    for report in of_service(reports, "kv").values():
        registers, counters = merged_state(report)
        dropped += sum(not superseded(registers, counters, update)
                       for update in report.local_state["faults"]["dropped"])
    return {"conserved": lost, "replicas": dropped, "audits": 0}
