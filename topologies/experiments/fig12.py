"""Figure 12: how long an external causal chain takes on this emulated
network, which gives tau_min for it.

Relays ask the key-value store (behind bvs1) and, the moment its reply
arrives, the bank (behind bvs2).  A chain runs from the first request
reaching a key-value replica (just after bvs1 forwarded it) to the second
reaching a bank shard (just after bvs2 forwarded it): the shortest path by
which a message marked by one SLB can cause one through another.  Every
timestamp comes from the processes' logs, on the one clock of this machine.
"""
from __future__ import annotations

import time

from beaver.traffic.eventlog import read_log

from ..experiment import Run
from ..processes import Workload
from ..spec import Service, Spec
from .results import Results

DESCRIPTION = "Fig. 12: latency CDF of external causal chains, tau_min of this network"


def add_arguments(p):
    p.add_argument("--duration", type=float, default=10.0, help="seconds of relaying (default 10)")
    p.add_argument("--relays", type=int, default=2, help="relay processes (default 2)")


def spec(relays: int) -> Spec:
    return Spec(slbs=2, services=(Service("kv", "kv", 2, 7000), Service("bank", "bank", 2, 7100)),
                outgroup=("relay",) * relays, assignment="per-vip")


def chain_latencies(log_paths, first_vip: str, then_vip: str) -> list[int]:
    """Microseconds from each relay's first request reaching the in-group to
    the request it caused reaching the in-group again."""
    received: dict[str, int] = {}
    relays = []
    for path in log_paths:
        header, events = read_log(path)
        events = list(events)
        if header["in_group"]:
            received.update((e["msg"], e["t_us"]) for e in events if e["kind"] == "recv")
        else:
            relays.append(events)
    chains = []
    for events in relays:
        first = None
        for e in events:
            if e["kind"] != "send":
                continue
            if e["peer"] == first_vip:
                first = e["msg"]
            elif e["peer"] == then_vip and first is not None:
                if first in received and e["msg"] in received:
                    chains.append(received[e["msg"]] - received[first])
                first = None
    return chains


def percentile(values: list[int], q: float) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure(results: Results, label: str, duration: float, relays: int) -> list[int]:
    network_spec = spec(relays)
    results.progress(f"{label}: {relays} relay(s) for {duration:g} s")
    with Run(network_spec, results.run_dir(label), Workload()) as run:
        run.start_traffic(warmup=0.5)
        time.sleep(duration)
        run.stop_traffic()
    (kv, (kv_service, _)), (bank, (bank_service, _)) = run.network.plan.vips().items()
    return chain_latencies(run.processes.log_paths(), f"{kv}:{kv_service.port}",
                           f"{bank}:{bank_service.port}")


def tau_or_measured(results: Results, tau_us: int | None) -> int:
    """tau_us if given, else tau_min of this network, measured on a fresh one."""
    if tau_us is not None:
        return tau_us
    tau = min(measure(results, "tau-min", 3.0, 2))
    results.progress(f"tau_min = {tau} us")
    return tau


def run(args, results: Results) -> list[dict]:
    chains = measure(results, "relays", args.duration, args.relays)
    if not chains:
        raise RuntimeError("no relay chain completed: see the run's out/*.err")
    results.write_csv([{"chain_us": c} for c in sorted(chains)])
    summary = {"chains": len(chains), "tau_min_us": min(chains),
               "p1_us": percentile(chains, 0.01), "p50_us": percentile(chains, 0.50),
               "p99_us": percentile(chains, 0.99), "max_us": max(chains)}
    plot(results, chains)
    return [summary]


def plot(results: Results, chains: list[int]):
    ordered = sorted(chains)
    fig, ax = results.figure()
    ax.plot([c / 1000 for c in ordered], [(i + 1) / len(ordered) for i in range(len(ordered))])
    ax.axvline(ordered[0] / 1000, color="tab:red", linestyle="--",
               label=f"tau_min = {ordered[0]} us")
    ax.set_xscale("log")
    ax.set_xlabel("external causal chain latency (ms)")
    ax.set_ylabel("CDF")
    ax.set_title("Figure 12: external causal chains on the emulated network")
    ax.legend()
    results.save_figure(fig)
