"""The experiments `beaver experiment run NAME` runs, one module each; their shared
parts are in common/.

A module has add_arguments(parser) and run(args, results), which writes its CSV,
JSON and PNG into results and returns the rows of the summary table the command
prints.  Modules are imported only to run: they need Mininet, and listing them
must not.
"""
import importlib

EXPERIMENTS = {   # name -> what it shows
    "fig5": "the seed's Figure 5: a late SLB, Beaver rejects, Lai-Yang accepts",
    "fig5tcp": "the seed's Figure 5 over TCP: a late SLB, Beaver rejects, Lai-Yang accepts",
    "clean": "a clean run: OGM snapshots under traffic, zero false accepts",
    "scale": "a clean run at scale: |G| = 8, 16 in-group and 16 out-group hosts",
    "fig10": "Fig. 10: sustained snapshot frequency vs |G|: k=1, parallel, batched, blocking",
    "fig11": "Fig. 11: effective snapshot rate vs frequency and |G| (fine and coarse rules)",
    "fig12": "Fig. 12: latency CDF of external causal chains, tau_min of this network",
    "fig13": "Fig. 13: the SLBs' switch window: t1 - t0, switch spread and clock bounds",
    "fig14": "Fig. 14: user throughput and p99 latency with and without Beaver",
    "fig14tcp": "Fig. 14 over TCP: iperf3 and YCSB-like throughput and latency with and without Beaver",
    "table3": "Table 3: bot detection with Beaver, Lai-Yang and polling at 0/5/10 % bots",
    "invariants": "integration testing: bank and kv invariants on every snapshot, with bugs injected",
    "inflight": "in-flight tracking: channel state at every cut against the logs",
    "deadlock": "deadlock detection: wait-for cycles in snapshots, real and phantom",
    "gc": "garbage collection: objects deleted on every snapshot, live ones counted",
    "recovery": "checkpoint and roll back: kill bank shards, restore the newest accepted snapshot",
}


def load(name: str):
    return importlib.import_module(f"{__name__}.{name}")
