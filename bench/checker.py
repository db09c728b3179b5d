"""How fast the consistency checker judges a large trace.

Writes a synthetic run's event logs: in-group processes that serve an
out-group client population and message each other, and snapshot the way
Beaver's rule makes them (a newer stamp or mark first records the state),
with every process reaching each ID at its own time.  Then loads the logs
and judges every snapshot, and prints events per second.

Run: python bench/checker.py [--events 1000000] [--processes 8] [--snapshots 200]
         [--lagging 0.01]
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from beaver.traffic.analysis.checker import Trace, check
from beaver.traffic.runtime.eventlog import EventLog


def synthesize(directory: Path, events: int, processes: int, snapshots: int, lagging: float,
               seed: int = 1):
    """Roughly `events` events; returns the number written.  A fraction
    `lagging` of client requests come unmarked (a gateway behind), which
    makes some cuts inconsistent."""
    rng = random.Random(seed)
    in_group = [f"p{i}" for i in range(processes)]
    clients = [f"c{i}" for i in range(processes * 4)]
    logs = {name: EventLog(directory / f"{name}.jsonl", name, True) for name in in_group}
    logs.update({name: EventLog(directory / f"{name}.jsonl", name, False) for name in clients})
    current = dict.fromkeys(in_group, 0)
    initiated = 0                       # the newest ID the slbs mark
    pending: list[tuple[str, str, int]] = []   # (msg, destination, stamp) in flight
    written = number = 0

    def advance(process: str, snapshot_id: int):
        nonlocal written
        if snapshot_id > current[process]:
            logs[process].snapshot(current[process] + 1, snapshot_id, "peer")
            current[process] = snapshot_id
            written += 1

    while written < events:
        if initiated < snapshots and rng.random() < snapshots / (events / 4):
            initiated += 1
            advance(rng.choice(in_group), initiated)   # the controller's first process
        number += 1
        msg = f"m{number}"
        if rng.random() < 0.5:          # a client asks a service, which answers it
            client, server = rng.choice(clients), rng.choice(in_group)
            logs[client].send(msg, server)
            if rng.random() >= lagging:
                advance(server, initiated)  # the SLB's mark
            logs[server].recv(msg, client)
            logs[server].send(msg + "r", client)
            logs[client].recv(msg + "r", server)
            written += 4
        else:                           # a peer message, delivered later
            src, dst = rng.sample(in_group, 2)
            logs[src].send(msg, dst)
            pending.append((msg, dst, current[src]))
            written += 1
        if pending and rng.random() < 0.5:
            msg, dst, stamp = pending.pop(rng.randrange(len(pending)))
            advance(dst, stamp)
            logs[dst].recv(msg, "?")
            written += 1
    for log in logs.values():
        log.close()
    return written


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--processes", type=int, default=8, help="in-group processes")
    p.add_argument("--snapshots", type=int, default=200)
    p.add_argument("--lagging", type=float, default=0.01,
                   help="fraction of client requests a lagging gateway leaves unmarked")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        written = synthesize(Path(directory), args.events, args.processes, args.snapshots,
                             args.lagging)
        started = time.perf_counter()
        trace = Trace.load(sorted(Path(directory).glob("*.jsonl")))
        loaded = time.perf_counter()
        verdicts = check(trace)
        judged = time.perf_counter()
    statuses = {s: sum(v.status == s for v in verdicts) for s in
                ("consistent", "inconsistent", "unjudged", "incomplete")}
    print(json.dumps({"events": written, "snapshots": len(verdicts), **statuses,
                      "load_s": round(loaded - started, 2), "judge_s": round(judged - loaded, 2),
                      "events_per_s": round(written / (judged - started))}, indent=1))


if __name__ == "__main__":
    main()
