"""Figure 14: what Beaver costs user traffic — throughput and p99 latency
with and without Beaver, in paired rounds (paired.py).

Each round runs three phases, each a fresh network with the same clients
(closed loop, to both services), in alternating order:

  without      a plain SLB and plain services: every SLB runs the SLB
               without Beaver (p4src/build/plain, PLAIN_SLB: no epoch
               state, no mark), the in-group runtime's Beaver layer off, no
               snapshots;
  marking      marking on and the Beaver runtime, no snapshot taken: the
               cost on the data path;
  snapshots-R  as marking, and the controller taking OGM snapshots at R
               per second (one phase for each of --rates, default 50 and
               1000) with every in-group report collected: timed
               initiation, IDs batched (common/impact.py).

The baseline is not Beaver's program with marking off: in BMv2 that pays
part of Beaver's per-packet cost even unmarked (every metadata field is
reset for every packet; docs/benchmarks.md counts it).

Throughput is the clients' replies per second (summed), latency their p99
(averaged over clients); each round's phase is divided by that round's
without, and the summary gives the median ratio with its quartiles and
range, against the goals, and beside it each party's CPU per request (the
SLBs, the in-group processes, the controller), measured over the clients'
lifetime. --cores pinned puts the controller on a core of its own and
every other process on the other, in every phase (topologies/cores.py);
--cores switches puts the SLBs with the controller, off the hosts' core,
as hardware switches would be; shared (default) lets them contend for both
cores.  --instructions JSON adds to a missed goal's verdict the party whose
instructions per request rose most, from the benchmarks' callgrind counts
(common/instructions.py).
"""
from __future__ import annotations

import statistics
import time

from beaver.topologies import cores
from beaver.topologies.cpu import CpuMeter
from beaver.topologies.experiment import Run
from beaver.topologies.processes import Workload
from beaver.topologies.spec import Service, Spec
from beaver.topologies.experiments.common import paired
from beaver.topologies.experiments.common import impact
from beaver.topologies.experiments.common.results import Results

SPEC = Spec(slbs=2, services=(Service("kv", "kv", 2, 7000), Service("bank", "bank", 2, 7100)),
            outgroup=("client-kv", "client-kv", "client-bank", "client-bank"),
            assignment="per-client")


def add_arguments(p):
    p.add_argument("--rounds", type=int, default=5, help="rounds of the three phases (default 5)")
    p.add_argument("--seconds", type=float, default=5.0, help="per phase (default 5)")
    impact.add_arguments(p)
    impact.add_instructions(p)


def phase(results: Results, round_no: int, kind: str, args) -> dict:
    beaver = kind != "without"
    workload = Workload(runtime_mode="beaver" if beaver else "off")
    label = f"{kind}-{round_no}"
    with Run(SPEC, results.run_dir(label), workload, marking=beaver,
             pipeline=impact.pipeline_of(kind)) as run:
        impact.prepare_clocks(run, kind)
        meter = CpuMeter(run.parties())
        run.start_traffic(warmup=0.0)
        placed = cores.apply(args.cores, switches=run.parties()["slb"])
        time.sleep(1.0)   # warm-up, placed
        taken = None
        if (rate := impact.rate_of(kind)) is not None:
            taken = run.snapshots(impact.snapshot_settings(rate, args), collect=False)
        else:
            time.sleep(args.seconds)
        run.stop_traffic()
        cpu, stolen = meter.read(), meter.stolen()
        if taken:   # the records are built for the count, not measured
            run.collect(taken)
    clients = [s for n, s in run.processes.summaries.items() if n in run.network.plan.outgroup]
    requests = sum(c["replies"] for c in clients)
    row = {"phase": label, "round": round_no, "kind": kind, "snapshots": len(run.records),
           "threads_on_traffic_core": placed.get("traffic", ""),
           "throughput": round(sum(c["throughput"] for c in clients), 1),
           "p50_us": statistics.mean(c["latency_p50_us"] for c in clients),
           "p99_us": statistics.mean(c["latency_p99_us"] for c in clients),
           "timeouts": sum(c["timeouts"] for c in clients), "requests": requests,
           "reports_asked": taken.reports_asked if taken else 0,
           "reasked": taken.reasked if taken else 0, paired.STEAL: round(stolen * 100, 2),
           **{paired.COST + party: round(seconds * 1e6 / max(1, requests), 1)
              for party, seconds in cpu.items()}}
    results.progress(f"{label}: {row['throughput']:.0f} replies/s, p99 {row['p99_us']:.0f} us, "
                     f"{row['snapshots']} snapshots ({row['reports_asked']} reports asked, "
                     f"{row['reasked']} of them again); CPU us/request "
                     + ", ".join(f"{p} {row[paired.COST + p]}" for p in cpu)
                     + f"; steal {row[paired.STEAL]} %")
    return row


def run(args, results: Results) -> list[dict]:
    results.progress(f"cores {cores.describe(args.cores)}")
    attribute = impact.attributor(args, SPEC.slbs, sum(s.replicas for s in SPEC.services))
    rows = [phase(results, n, kind, args)
            for n, kind in paired.rounds(impact.phases(args.rates), args.rounds)]
    results.write_csv(rows)
    goals = impact.goals(args.rates)
    counted = {"instructions": impact.counted_by(args)} if args.instructions else {}
    summary = [{**row, "cores": args.cores, **counted}
               for row in paired.judge(rows, "throughput", "p99_us", goals, per="request",
                                           apart=cores.apart(args.cores),
                                           instructions=attribute)]
    plot(results, rows, goals, args.cores)
    return summary


def plot(results: Results, rows: list[dict], goals, where: str):
    fig, (ratios, costs) = results.figure(2)
    paired.draw(ratios, costs, rows, ("throughput", "p50_us", "p99_us"), goals, "request",
                f"Figure 14: user traffic with Beaver ({where})")
    results.save_figure(fig)
