"""Figure 14 over TCP: what Beaver costs TCP traffic, with the SLBs' MARKs
stripped by the kernel program on every in-group host (topologies/decap.py).

Two workloads, as the paper's Fig. 14a and 14b:

  iperf   one iperf3 client sending bulk TCP through an SLB to the iperf
          VIP (a plain iperf3 server, in no snapshot): the data path's cost;
          goodput as the iperf3 server counted it, the first second omitted;
  ycsb    YCSB-like closed-loop clients (workload A: half reads, half
          updates, Zipfian keys) of the replicated TCP key-value store.

Each in three phases, each a fresh network, as fig14.py:

  without     SLB marking off and the runtime's Beaver layer off (the kernel
              program still strips the encapsulation: TCP needs it);
  marking     marking on and the Beaver runtime, no snapshot taken;
  snapshots   as marking, and OGM snapshots at --rate with every in-group
              report collected (unless --no-reports), while the workload runs.

Ratios are each phase / without, medians of the rounds.  The controller,
the switches and every process share this machine's cores.
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

DESCRIPTION = "Fig. 14 over TCP: iperf3 and YCSB-like throughput and latency with and without Beaver"

SPEC = Spec(slbs=2, services=(Service("kv", "kv", 2, 7000, "tcp"),
                              Service("iperf", "iperf", 1, 5201, "tcp")),
            outgroup=("ycsb", "ycsb", "iperf"), assignment="per-client")
WORKLOADS = ("iperf", "ycsb")
PHASES = ("without", "marking", "snapshots")
METRICS = {"iperf": ("throughput_mbps", "rtt_mean_us"),
           "ycsb": ("throughput", "p50_us", "p99_us")}


def add_arguments(p):
    p.add_argument("--rounds", type=int, default=2, help="rounds of the phases (default 2)")
    p.add_argument("--seconds", type=float, default=8.0, help="measured, per phase (default 8)")
    p.add_argument("--rate", type=float, default=50.0,
                   help="snapshots per second in the snapshots phase (default 50)")
    p.add_argument("--no-reports", action="store_true",
                   help="snapshots without collecting the in-group reports (the controller's "
                        "share of the cores)")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help=f"comma-separated, of {', '.join(WORKLOADS)} (default both)")


def phase(results: Results, label: str, workload: str, kind: str, args) -> dict:
    beaver = kind != "without"
    settings = Workload(runtime_mode="beaver" if beaver else "off",
                        iperf_seconds=args.seconds)
    with Run(SPEC, results.run_dir(label), settings, marking=beaver,
             reports=not args.no_reports) as run:
        run.start_traffic(warmup=1.0, roles=(workload,))   # iperf omits that second
        started = time.monotonic()
        if kind == "snapshots":
            summary = run.snapshots(RunSettings(Mode.OGM, rules.FINE, 1000, inflight=4,
                                                rate=args.rate,
                                                count=int(args.rate * args.seconds)))
        time.sleep(max(0.0, args.seconds - (time.monotonic() - started)))
        if workload == "iperf":
            for name, proc in list(run.processes.running.items()):
                if name in run.network.plan.outgroup:
                    proc.wait(args.seconds + 10)
        run.stop_traffic()
        counters = [d.counters() for d in run.network.decaps.values()]
    clients = [s for n, s in run.processes.summaries.items() if n in run.network.plan.outgroup]
    errors = [c["error"] for c in clients if "error" in c]
    if errors:
        raise RuntimeError(f"{label}: {'; '.join(map(str, errors))}")
    row = {"phase": label, "workload": workload, "kind": kind, "snapshots": len(run.records),
           "snapshot_rate": round(summary.rate, 1) if kind == "snapshots" else 0.0,
           "decapsulated": sum(c["decapsulated"] for c in counters),
           "foreign_or_malformed": sum(c["foreign"] + c["malformed"] for c in counters)}
    if workload == "iperf":
        row.update(throughput_mbps=sum(c["throughput_mbps"] for c in clients),
                   rtt_mean_us=statistics.mean(c["rtt_mean_us"] for c in clients),
                   retransmits=sum(c["retransmits"] for c in clients))
        text = f"{row['throughput_mbps']:.1f} Mbit/s, RTT {row['rtt_mean_us']:.0f} us"
    else:
        row.update(throughput=round(sum(c["throughput"] for c in clients), 1),
                   p50_us=statistics.mean(c["latency_p50_us"] for c in clients),
                   p99_us=statistics.mean(c["latency_p99_us"] for c in clients),
                   timeouts=sum(c["timeouts"] for c in clients))
        text = f"{row['throughput']:.0f} replies/s, p99 {row['p99_us']:.0f} us"
    results.progress(f"{label}: {text}, {row['snapshots']} snapshots "
                     f"({row['snapshot_rate']}/s)")
    return row


def run(args, results: Results) -> list[dict]:
    workloads = [w for w in args.workloads.split(",") if w]
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        raise ValueError(f"unknown workloads {sorted(unknown)}: of {', '.join(WORKLOADS)}")
    rows = [phase(results, f"{workload}-{kind}-{n}", workload, kind, args)
            for workload in workloads for n in range(1, args.rounds + 1) for kind in PHASES]
    results.write_csv(rows)
    summary = []
    for workload in workloads:
        for metric in METRICS[workload]:
            medians = {kind: statistics.median(r[metric] for r in rows
                                               if r["workload"] == workload
                                               and r["kind"] == kind) for kind in PHASES}
            summary.append({"workload": workload, "metric": metric,
                            **{k: round(v, 1) for k, v in medians.items()},
                            **{f"{k}/without": round(medians[k] / medians["without"], 3)
                               for k in PHASES[1:]}})
    plot(results, summary)
    return summary


def plot(results: Results, summary: list[dict]):
    fig, ax = results.figure()
    labels = [f"{s['workload']}\n{s['metric']}" for s in summary]
    width = 0.35
    for i, kind in enumerate(PHASES[1:]):
        ratios = [s[f"{kind}/without"] for s in summary]
        xs = [m + (i - 0.5) * width for m in range(len(labels))]
        ax.bar(xs, ratios, width, label=f"{kind} / without")
        for x, r in zip(xs, ratios):
            ax.text(x, r + 0.02, f"{r:.2f}", ha="center", fontsize=8)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_ylabel("with Beaver / without (median of rounds)")
    ax.set_title("Figure 14 over TCP: iperf3 and YCSB-like, normalised")
    ax.legend(fontsize=8)
    results.save_figure(fig)
