"""Figure 14: what Beaver costs user traffic — throughput and p99 latency
with and without Beaver, in the same run.

Each round runs three phases, each a fresh network with the same clients
(closed loop, to both services):

  without      SLB marking off, the in-group runtime's Beaver layer off, no
               snapshots: a plain SLB and plain services;
  marking      marking on and the Beaver runtime, no snapshot taken: the
               cost on the data path;
  snapshots    as marking, and the controller taking OGM snapshots at
               --rate with every in-group report collected: timed
               initiation, --batch IDs per control message (1: one INIT
               and one READ per snapshot and SLB, as before batching).

Throughput is the clients' replies per second (summed), latency their p99
(averaged over clients); the ratios are each phase / without, as in the
paper.  The controller shares this machine's cores with the switches and
every process, so the last phase also measures that contention.
"""
from __future__ import annotations

import statistics
import time

from beaver.control import rules
from beaver.control.engine import TIMED, RunSettings
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
    p.add_argument("--rounds", type=int, default=3, help="rounds of the three phases (default 3)")
    p.add_argument("--seconds", type=float, default=8.0, help="per phase (default 8)")
    p.add_argument("--rate", type=float, default=50.0,
                   help="snapshots per second while with Beaver (default 50)")
    p.add_argument("--batch", type=int, default=10,
                   help="IDs per control message in the snapshots phase (default 10: "
                        "one INIT_BATCH and one READ_BATCH per SLB every 0.2 s at 50/s)")


PHASES = ("without", "marking", "snapshots")


def phase(results: Results, label: str, kind: str, args) -> dict:
    beaver = kind != "without"
    workload = Workload(runtime_mode="beaver" if beaver else "off")
    with Run(SPEC, results.run_dir(label), workload, marking=beaver) as run:
        run.start_traffic(warmup=1.0)
        if kind == "snapshots":
            run.snapshots(RunSettings(Mode.OGM, rules.FINE, 1000, inflight=4 * args.batch,
                                      rate=args.rate, count=int(args.rate * args.seconds),
                                      batch=args.batch, initiation=TIMED))
        else:
            time.sleep(args.seconds)
        run.stop_traffic()
    clients = [s for n, s in run.processes.summaries.items() if n in run.network.plan.outgroup]
    row = {"phase": label, "kind": kind, "snapshots": len(run.records),
           "throughput": round(sum(c["throughput"] for c in clients), 1),
           "p50_us": statistics.mean(c["latency_p50_us"] for c in clients),
           "p99_us": statistics.mean(c["latency_p99_us"] for c in clients),
           "timeouts": sum(c["timeouts"] for c in clients)}
    results.progress(f"{label}: {row['throughput']:.0f} replies/s, p99 {row['p99_us']:.0f} us, "
                     f"{row['snapshots']} snapshots")
    return row


def run(args, results: Results) -> list[dict]:
    rows = [phase(results, f"{kind}-{n}", kind, args)
            for n in range(1, args.rounds + 1) for kind in PHASES]
    results.write_csv(rows)
    summary = []
    for metric in ("throughput", "p50_us", "p99_us"):
        medians = {kind: statistics.median(r[metric] for r in rows if r["kind"] == kind)
                   for kind in PHASES}
        summary.append({"metric": metric, **{k: round(v, 1) for k, v in medians.items()},
                        **{f"{k}/without": round(medians[k] / medians["without"], 3)
                           for k in PHASES[1:]}})
    plot(results, summary)
    return summary


def plot(results: Results, summary: list[dict]):
    fig, ax = results.figure()
    metrics = [s["metric"] for s in summary]
    width = 0.35
    for i, kind in enumerate(PHASES[1:]):
        ratios = [s[f"{kind}/without"] for s in summary]
        xs = [m + (i - 0.5) * width for m in range(len(metrics))]
        ax.bar(xs, ratios, width, label=f"{kind} / without")
        for x, r in zip(xs, ratios):
            ax.text(x, r + 0.02, f"{r:.2f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(metrics)), metrics)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel("with Beaver / without (median of rounds)")
    ax.set_title("Figure 14: user traffic with Beaver, normalised")
    ax.legend(fontsize=8)
    results.save_figure(fig)
