"""Figure 14 over TCP: what Beaver costs TCP traffic, with the SLBs' MARKs
stripped by the kernel program on every in-group host (topologies/decap.py).

Two workloads, as the paper's Fig. 14a and 14b:

  iperf   one iperf3 client sending bulk TCP through an SLB to the iperf
          VIP (a plain iperf3 server, in no snapshot): the data path's cost;
          goodput as the iperf3 server counted it, the first second omitted;
  ycsb    YCSB-like closed-loop clients (workload A: half reads, half
          updates, Zipfian keys) of the replicated TCP key-value store.

Each in three phases, each a fresh network, in paired rounds as fig14.py:

  without     SLB marking off and the runtime's Beaver layer off (the kernel
              program still strips the encapsulation: TCP needs it);
  marking     marking on and the Beaver runtime, no snapshot taken;
  snapshots   as marking, and OGM snapshots at --rate with every in-group
              report collected (unless --no-reports), while the workload runs:
              timed initiation, --batch IDs per control message, as fig14.py
              (immediate, one INIT and one READ per snapshot and SLB, cost
              iperf3 a fifth of its goodput here, the SLB 44 us more CPU per
              packet than without).

Each round's phase is divided by that round's without; the summary gives
the median ratio with its quartiles and range, against the goals, and
beside it each party's CPU per request (YCSB-like) or per packet the SLB
forwarded (iperf3: the MARKs the hosts decapsulated): the SLBs, the
in-group processes, the controller, and the kernel decapsulation (its run time
as the kernel counts it, BPF_ENABLE_STATS while the phase runs; also per
packet it ran on). The controller, the switches and every process share
this machine's cores.
"""
from __future__ import annotations

import statistics
import time

from beaver.control.engine import rules
from beaver.control.engine.engine import TIMED, RunSettings
from beaver.control.engine.record import Mode
from beaver.traffic.runtime import flowmap

from beaver.topologies.cpu import CpuMeter
from beaver.topologies.experiment import Run
from beaver.topologies.processes import Workload
from beaver.topologies.spec import Service, Spec
from beaver.topologies.experiments.common import paired
from beaver.topologies.experiments.common.paired import Goal
from beaver.topologies.experiments.common.results import Results

SPEC = Spec(slbs=2, services=(Service("kv", "kv", 2, 7000, "tcp"),
                              Service("iperf", "iperf", 1, 5201, "tcp")),
            outgroup=("ycsb", "ycsb", "iperf"), assignment="per-client")
WORKLOADS = ("iperf", "ycsb")
PHASES = ("without", "marking", "snapshots")
# (throughput, latency) judged, what a cost is counted per, every metric plotted
JUDGED = {"iperf": ("throughput_mbps", "rtt_mean_us", "packet"),
          "ycsb": ("throughput", "p99_us", "request")}
PLOTTED = {"iperf": ("throughput_mbps", "rtt_mean_us"), "ycsb": ("throughput", "p50_us", "p99_us")}
GOALS = {"iperf": {"marking": Goal(0.98), "snapshots": Goal(0.95)},   # the paper's near-zero
         "ycsb": {"marking": Goal(0.98), "snapshots": Goal(0.95, p99=1.2)}}


def add_arguments(p):
    p.add_argument("--rounds", type=int, default=5, help="rounds of the phases (default 5)")
    p.add_argument("--seconds", type=float, default=5.0, help="measured, per phase (default 5)")
    p.add_argument("--rate", type=float, default=50.0,
                   help="snapshots per second in the snapshots phase (default 50)")
    p.add_argument("--batch", type=int, default=10,
                   help="IDs per control message in the snapshots phase (default 10; 1: one "
                        "INIT and one READ per snapshot and SLB)")
    p.add_argument("--no-reports", action="store_true",
                   help="snapshots without collecting the in-group reports (the controller's "
                        "share of the cores)")
    p.add_argument("--workloads", default=",".join(WORKLOADS),
                   help=f"comma-separated, of {', '.join(WORKLOADS)} (default both)")


def phase(results: Results, workload: str, round_no: int, kind: str, args) -> dict:
    beaver = kind != "without"
    label = f"{workload}-{kind}-{round_no}"
    settings = Workload(runtime_mode="beaver" if beaver else "off",
                        iperf_seconds=args.seconds)
    with Run(SPEC, results.run_dir(label), settings, marking=beaver,
             reports=not args.no_reports) as run, flowmap.StatsOn():
        decaps = list(run.network.decaps.values())
        before = [(d.counters()["decapsulated"], *flowmap.run_stats(d.prog_id)) for d in decaps]
        meter = CpuMeter(run.parties())
        run.start_traffic(warmup=1.0, roles=(workload,))   # iperf omits that second
        started = time.monotonic()
        if kind == "snapshots":
            summary = run.snapshots(RunSettings(Mode.OGM, rules.FINE, 1000,
                                                inflight=4 * args.batch, rate=args.rate,
                                                count=int(args.rate * args.seconds),
                                                batch=args.batch, initiation=TIMED))
        time.sleep(max(0.0, args.seconds - (time.monotonic() - started)))
        if workload == "iperf":
            for name, proc in list(run.processes.running.items()):
                if name in run.network.plan.outgroup:
                    proc.wait(args.seconds + 10)
        run.stop_traffic()
        cpu = meter.read()
        after = [(d.counters()["decapsulated"], *flowmap.run_stats(d.prog_id)) for d in decaps]
        counters = [d.counters() for d in decaps]
    decapsulated, decap_ns, decap_runs = (sum(a[i] - b[i] for a, b in zip(after, before))
                                          for i in range(3))
    clients = [s for n, s in run.processes.summaries.items() if n in run.network.plan.outgroup]
    errors = [c["error"] for c in clients if "error" in c]
    if errors:
        raise RuntimeError(f"{label}: {'; '.join(map(str, errors))}")
    requests = decapsulated if workload == "iperf" else sum(c["replies"] for c in clients)
    cpu["decap"] = decap_ns / 1e9
    row = {"phase": label, "workload": workload, "round": round_no, "kind": kind,
           "snapshots": len(run.records),
           "snapshot_rate": round(summary.rate, 1) if kind == "snapshots" else 0.0,
           "decapsulated": decapsulated,
           "foreign_or_malformed": sum(c["foreign"] + c["malformed"] for c in counters),
           "requests": requests,
           "reports_asked": summary.reports_asked if kind == "snapshots" else 0,
           "reasked": summary.reasked if kind == "snapshots" else 0,
           "decap_ns_per_packet": round(decap_ns / max(1, decap_runs), 1),
           **{paired.COST + party: round(seconds * 1e6 / max(1, requests), 2)
              for party, seconds in cpu.items()}}
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
    per = JUDGED[workload][2]
    results.progress(f"{label}: {text}, {row['snapshots']} snapshots "
                     f"({row['snapshot_rate']}/s, {row['reports_asked']} reports asked, "
                     f"{row['reasked']} of them again); CPU us/{per} "
                     + ", ".join(f"{p} {row[paired.COST + p]}" for p in cpu)
                     + f"; decap {row['decap_ns_per_packet']} ns/packet")
    return row


def run(args, results: Results) -> list[dict]:
    workloads = [w for w in args.workloads.split(",") if w]
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        raise ValueError(f"unknown workloads {sorted(unknown)}: of {', '.join(WORKLOADS)}")
    rows = [phase(results, workload, n, kind, args)
            for workload in workloads for n, kind in paired.rounds(PHASES, args.rounds)]
    results.write_csv(rows)
    summary = []
    for workload in workloads:
        mine = [r for r in rows if r["workload"] == workload]
        throughput, latency, per = JUDGED[workload]
        for row in paired.judge(mine, throughput, latency, GOALS[workload], per):
            ns = {kind: statistics.median(r["decap_ns_per_packet"] for r in mine
                                          if r["kind"] == kind)
                  for kind in (row["phase"], paired.BASELINE)}
            row = {("latency" if k == latency else k): v for k, v in row.items()}
            summary.append({"workload": workload, **row, "latency is": latency,
                            "decap ns/packet": f"{ns[row['phase']]:.0f} vs "
                                               f"{ns[paired.BASELINE]:.0f}"})
    plot(results, rows, workloads)
    return summary


def plot(results: Results, rows: list[dict], workloads: list[str]):
    fig, axes = results.figure(2 * len(workloads))
    for i, workload in enumerate(workloads):
        paired.draw(axes[2 * i], axes[2 * i + 1], [r for r in rows if r["workload"] == workload],
                    PLOTTED[workload], GOALS[workload], JUDGED[workload][2],
                    f"Figure 14 over TCP: {workload}")
    results.save_figure(fig)
