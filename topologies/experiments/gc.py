"""Serverless garbage collection: two functions (fa, fb), each with its part
of the object store (traffic/services/objects.py); out-group clients create objects
at fa and hand references through an out-group queue to fb (gcclient.py,
forwarder.py).  On every accepted snapshot a collector deletes the objects
no reference counts for (traffic/analysis/gc.py), with Beaver, Lai-Yang and polling
(methods.py).

Scored against the ground truth of the functions' consumes (from their
states at the cut and at the end): live objects deleted (data loss) and
garbage reclaimed.  Lai-Yang initiates fb late.
"""
from __future__ import annotations

from beaver.traffic.analysis.gc import collect, counts, live

from beaver.topologies.spec import Service, Spec
from beaver.topologies.experiments.common import methods
from beaver.topologies.experiments.common.results import Results


def add_arguments(p):
    methods.add_arguments(p)
    p.add_argument("--clients", type=int, default=4, help="out-group clients (default 4)")


def spec(clients: int) -> Spec:
    return Spec(slbs=2, services=(Service("fa", "gc", 1, 7400), Service("fb", "gc", 1, 7500)),
                outgroup=("forwarder",) + ("gc-client",) * clients, assignment="per-client")


def score(states, final_states) -> dict[str, int]:
    """One snapshot: objects it holds, the garbage among them, what the
    collector deletes of each."""
    every = set(counts(states))
    deleted = collect(states)
    still_live = live(every, states, final_states)
    return {"objects": len(every), "garbage": len(every - still_live),
            "reclaimed": len(deleted - still_live), "live_deleted": len(deleted & still_live)}


KEYS = ("objects", "garbage", "reclaimed", "live_deleted")


def run(args, results: Results) -> list[dict]:
    tau = methods.tau(args, results)
    network = spec(args.clients)
    functions = methods.processes_of(network, "fa") + methods.processes_of(network, "fb")
    late = methods.processes_of(network, "fb")
    summary, rows = [], []
    for method, phase in methods.run_methods(args, results, network, tau, late).items():
        final_states = [phase.summaries[n].get("final_state", {}) for n in functions]
        scored = {r.number: score([rep.local_state for rep in r.reports.values()],
                                  final_states) for r in methods.accepted(phase)}
        for row in phase.rows:
            row.update(scored.get(row["number"], {}))
        rows += phase.rows
        summary.append({"method": method, "snapshots": len(scored),
                        **{k: sum(s[k] for s in scored.values()) for k in KEYS},
                        "snapshots_with_loss": sum(s["live_deleted"] > 0
                                                   for s in scored.values()),
                        **methods.checker_counts(phase)})
        results.progress(f"{method}: " + ", ".join(f"{k}={summary[-1][k]}" for k in
                                                   ("snapshots", "garbage", "reclaimed",
                                                    "live_deleted")))
    results.write_csv(rows, "gc-snapshots")
    results.write_csv(summary)
    plot(results, summary)
    return summary


def plot(results: Results, summary: list[dict]):
    methods.plot_methods(results, summary, (
        ("garbage", "tab:gray", "garbage in the snapshot"),
        ("reclaimed", "tab:green", "garbage deleted"),
        ("live_deleted", "tab:red", "live objects deleted")),
        "objects, summed over accepted snapshots", "Garbage collection from snapshots")
