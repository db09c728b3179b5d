"""The deadlock-detection use case: a snapshot's wait-for graph, its cycles,
and the ground truth they are judged against.

Each lock manager's local state (traffic/services/locks.py) is its part of the
graph: a workflow waiting for a lock waits for the lock's holder.  Every
cycle in the union is a reported deadlock; each strongly connected part of
the graph with a cycle counts once, named by the requests its waits came
from.

The only real deadlocks are the injected ones (ordinary workflows take
their locks in one order: traffic/outgroup/workflows.py).  An injected deadlock is an
episode: the two waits of a deadlocking pair.  It existed from the moment
both waits were received to the first receive of anything that ended one
(a cancel, a release), on the managers' log clocks.  A reported cycle is
real exactly when its waits are one episode's and that episode existed; any
other is a phantom, a cycle that never existed at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from beaver.traffic.analysis.checker import Trace

NEVER = float("inf")


@dataclass(frozen=True)
class Wait:
    waiter: str
    holder: str
    lock: str
    request: str      # the id of the waiter's acquire


def waits(states: Iterable[Mapping]) -> list[Wait]:
    """The wait-for edges of the lock managers among states."""
    edges = []
    for state in states:
        if state.get("service") != "locks":
            continue
        for lock, queue in state["waiters"].items():
            holder = state["holders"].get(lock)
            for waiter, request in queue:
                if holder is not None:
                    edges.append(Wait(waiter, holder[0], lock, request))
    return edges


def cycles(edges: list[Wait]) -> list[frozenset[str]]:
    """Per strongly connected part with a cycle, the requests of its waits."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.waiter, set()).add(e.holder)
        graph.setdefault(e.holder, set())

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()] - seen:
                seen.add(nxt)
                todo.append(nxt)
        return seen

    reachable = {node: reach(node) for node in graph}
    parts = {frozenset(n for n in reachable[node] if node in reachable[n])
             for node in graph if node in reachable[node]}
    return sorted((frozenset(e.request for e in edges if e.waiter in part and e.holder in part)
                   for part in parts), key=sorted)


@dataclass(frozen=True)
class Episode:
    """One injected deadlock: its pair's two waits, and when it existed."""
    requests: frozenset[str]
    start_us: float       # both waits received
    end_us: float         # something that ends one received (NEVER: not in the logs)

    @property
    def existed(self) -> bool:
        return self.start_us < self.end_us


def episodes(sides: Iterable[Iterable[Mapping]], received_us: Mapping[str, int]) -> list[Episode]:
    """From the deadlocking pair's summaries (each side's episodes, with its
    wait's and ends' message ids) and the managers' receive times by id."""
    by_period: dict[int, list[Mapping]] = {}
    for side in sides:
        for episode in side:
            by_period.setdefault(episode["period"], []).append(episode)
    out = []
    for period, pair in sorted(by_period.items()):
        if len(pair) != 2:
            continue   # one side missed the period: no deadlock was set up
        starts = [received_us.get(e["wait"], NEVER) for e in pair]
        ends = [received_us.get(i, NEVER) for e in pair for i in e["ends"]]
        out.append(Episode(frozenset(e["wait"] for e in pair), max(starts), min(ends)))
    return out


@dataclass
class Judged:
    real: int = 0        # reported cycles that are an episode that existed
    phantom: int = 0     # reported cycles that never existed at once
    missed: int = 0      # episodes that existed across every cut, not reported


def judge(reported: list[frozenset[str]], known: list[Episode],
          cut_us: Iterable[tuple[float, float]]) -> Judged:
    """One snapshot.  cut_us: per process, the times of the events just before
    and just after its cut; an episode that existed from before the earliest
    to after the latest was there at every cut, so a snapshot must report it."""
    real = {e.requests for e in known if e.existed}
    cut_us = list(cut_us)
    first, last = min(before for before, _ in cut_us), max(after for _, after in cut_us)
    judged = Judged()
    for cycle in reported:
        if cycle in real:
            judged.real += 1
        else:
            judged.phantom += 1
    judged.missed = sum(1 for e in known if e.existed and e.start_us <= first
                        and last <= e.end_us and e.requests not in reported)
    return judged


def received_us(trace: Trace) -> dict[str, int]:
    """When each message was received in the in-group, by its id."""
    out = {}
    for i in trace.in_group:
        p = trace.processes[i]
        out.update((msg, t) for kind, msg, t in zip(p.kinds, p.msgs, p.times) if kind == "recv")
    return out


def cut_us(trace: Trace, snapshot_id: int) -> list[tuple[float, float]]:
    """Per in-group process, the times of its events just before and just after
    its cut for snapshot_id (as on the wire); -inf/inf where there is none."""
    out = []
    for i, (position, _) in trace.cut(trace.unwrap(snapshot_id)).items():
        times = trace.processes[i].times
        out.append((times[position - 1] if position else -NEVER,
                    times[position] if position < len(times) else NEVER))
    return out
