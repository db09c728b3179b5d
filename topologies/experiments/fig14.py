"""Figure 14: what Beaver costs user traffic — throughput and p99 latency
with and without Beaver, in the same run.

Rounds alternate two phases, each a fresh network with the same clients
(closed loop, to both services):

  without   SLB marking off, the in-group runtime's Beaver layer off, no
            snapshots: a plain SLB and plain services;
  with      marking on, the Beaver runtime, and the controller taking OGM
            snapshots at --rate with every in-group report collected.

Throughput is the clients' replies per second (summed), latency their p99
(averaged over clients); the ratios are with / without, as in the paper.
"""
from __future__ import annotations

import statistics
import time

from beaver.control import rules
from beaver.control.engine import RunSettings
from beaver.control.record import Mode

from ..experiment import Run
from ..processes import Workload
from ..spec import Service, Spec
from .results import Results

DESCRIPTION = "Fig. 14: user throughput and p99 latency with and without Beaver"

SPEC = Spec(slbs=2, services=(Service("kv", "kv", 2, 7000), Service("bank", "bank", 2, 7100)),
            outgroup=("client-kv", "client-kv", "client-bank", "client-bank"),
            assignment="per-client")


def add_arguments(p):
    p.add_argument("--rounds", type=int, default=3, help="with/without pairs (default 3)")
    p.add_argument("--seconds", type=float, default=8.0, help="per phase (default 8)")
    p.add_argument("--rate", type=float, default=50.0,
                   help="snapshots per second while with Beaver (default 50)")


def phase(results: Results, label: str, beaver: bool, args) -> dict:
    workload = Workload(runtime_mode="beaver" if beaver else "off")
    with Run(SPEC, results.run_dir(label), workload, marking=beaver) as run:
        run.start_traffic(warmup=1.0)
        if beaver:
            run.snapshots(RunSettings(Mode.OGM, rules.FINE, 1000, inflight=4, rate=args.rate,
                                      count=int(args.rate * args.seconds)))
        else:
            time.sleep(args.seconds)
        run.stop_traffic()
    clients = [s for n, s in run.processes.summaries.items() if n in run.network.plan.outgroup]
    row = {"phase": label, "beaver": beaver, "snapshots": len(run.records),
           "throughput": round(sum(c["throughput"] for c in clients), 1),
           "p50_us": statistics.mean(c["latency_p50_us"] for c in clients),
           "p99_us": statistics.mean(c["latency_p99_us"] for c in clients),
           "timeouts": sum(c["timeouts"] for c in clients)}
    results.progress(f"{label}: {row['throughput']:.0f} replies/s, p99 {row['p99_us']:.0f} us, "
                     f"{row['snapshots']} snapshots")
    return row


def run(args, results: Results) -> list[dict]:
    rows = []
    for n in range(1, args.rounds + 1):
        rows.append(phase(results, f"without-{n}", False, args))
        rows.append(phase(results, f"with-{n}", True, args))
    results.write_csv(rows)
    summary = []
    for metric in ("throughput", "p50_us", "p99_us"):
        without = statistics.median(r[metric] for r in rows if not r["beaver"])
        with_ = statistics.median(r[metric] for r in rows if r["beaver"])
        summary.append({"metric": metric, "without": round(without, 1),
                        "with": round(with_, 1), "ratio": round(with_ / without, 3)})
    plot(results, rows, summary)
    return summary


def plot(results: Results, rows: list[dict], summary: list[dict]):
    fig, ax = results.figure()
    metrics = [s["metric"] for s in summary]
    ax.bar(metrics, [s["ratio"] for s in summary], color="tab:blue")
    for i, s in enumerate(summary):
        ax.text(i, s["ratio"] + 0.01, f"{s['ratio']:.3f}", ha="center")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel("with Beaver / without (median of rounds)")
    ax.set_ylim(0, max(1.2, max(s["ratio"] for s in summary) + 0.1))
    ax.set_title("Figure 14: user traffic with Beaver, normalised")
    results.save_figure(fig)
