"""Figure 14 over TCP: what Beaver costs TCP traffic, with the SLBs' MARKs
stripped by the kernel program on every in-group host (topologies/decap.py).

The workloads, as the paper's Fig. 14a and 14b:

  iperf    one iperf3 client sending TCP through an SLB to the iperf VIP (a
           plain iperf3 server, in no snapshot): the data path's cost;
           goodput as the iperf3 server counted it, the first second
           omitted.  Bulk; or with --loads, a capacity phase first (bulk,
           without Beaver, the plain SLB as the baseline) and then the
           phases at each percent of it (iperf3 --bitrate), each its
           own workload "iperf@L%";
  ycsb-X   YCSB-like closed-loop clients of the replicated TCP key-value
           store, YCSB's workload X (traffic/outgroup/ycsb.py): A (half
           reads, half updates), B (95 % reads), C (reads only) or E
           (95 % range scans, 5 % updates), Zipfian keys.

Each in three phases, each a fresh network, in paired rounds as fig14.py:

  without     every SLB runs the SLB without Beaver (p4src/build/plain,
              PLAIN_SLB: no epoch state, no mark; not Beaver's program with
              marking off, which pays much of Beaver's per-packet
              cost: fig14.py) and the runtime's Beaver layer off (the kernel
              program still strips the encapsulation: TCP needs it);
  marking     marking on and the Beaver runtime, no snapshot taken;
  snapshots-R as marking, and OGM snapshots at R per second (each of
              --rates) with every in-group report collected (unless
              --no-reports), while the workload runs: timed initiation, IDs
              batched, as fig14.py (immediate, one INIT and one READ per
              snapshot and SLB, cost iperf3 a fifth of its goodput here).

Each round's phase is divided by that round's without; the summary gives
the median ratio with its quartiles and range, against the goals, and
beside it each party's CPU per request (YCSB-like) or per packet the SLB
forwarded (iperf3: the MARKs the hosts decapsulated): the SLBs, the
in-group processes, the controller, and the kernel decapsulation (its run time
as the kernel counts it, BPF_ENABLE_STATS while the phase runs; also per
packet it ran on). --cores as fig14.py.

--instructions JSON, as fig14.py, adds to a missed goal's verdict the party
whose instructions per request (iperf3: per packet) rose most, at the
phase's own rates: the SLBs' per-packet counts times the packets a request
took through them in that phase (the MARKs the hosts decapsulated over the
replies; the Direct Server Return replies bypass the SLBs); the in-group's
are the UDP runtime's (bench/runtime_instructions.py drives that one: the
TCP runtime shares its snapshot path, not its transport), and 0 under
iperf3, whose server runs no Beaver runtime.
"""
from __future__ import annotations

import statistics
import time

from beaver.traffic.runtime import flowmap

from beaver.topologies import cores
from beaver.topologies.cpu import CpuMeter
from beaver.topologies.experiment import Run
from beaver.topologies.processes import Workload
from beaver.topologies.spec import Service, Spec
from beaver.topologies.experiments.common import impact, paired
from beaver.topologies.experiments.common.instructions import InstructionsError
from beaver.topologies.experiments.common.methods import some_of
from beaver.topologies.experiments.common.results import Results

SPEC = Spec(slbs=2, services=(Service("kv", "kv", 2, 7000, "tcp"),
                              Service("iperf", "iperf", 1, 5201, "tcp")),
            outgroup=("ycsb", "ycsb", "iperf"), assignment="per-client")
YCSB = ("a", "b", "c", "e")    # YCSB's workloads the client runs (ycsb.py)
WORKLOADS = ("iperf", *(f"ycsb-{w}" for w in YCSB))
# what the throughput and the latency of a workload are, and what a cost is counted per
JUDGED = {"iperf": ("throughput_mbps", "rtt_mean_us", "packet"),
          "ycsb": ("throughput", "p99_us", "request")}
# what a workload's instruction rises hold for the in-group (--instructions)
INGROUP_COUNTED = {"iperf": "in-group 0: the iperf3 server runs no Beaver runtime",
                   "ycsb": "in-group: the UDP runtime's (the same snapshot path; the TCP "
                           "runtime's flow-ID lookup per read not counted)"}
PLOTTED = {"iperf": ("throughput_mbps", "rtt_mean_us"), "ycsb": ("throughput", "p50_us", "p99_us")}


def add_arguments(p):
    p.add_argument("--rounds", type=int, default=5, help="rounds of the phases (default 5)")
    p.add_argument("--seconds", type=float, default=5.0, help="measured, per phase (default 5)")
    impact.add_arguments(p)
    p.add_argument("--no-reports", action="store_true",
                   help="snapshots without collecting the in-group reports (the controller's "
                        "share of the cores)")
    p.add_argument("--workloads", type=some_of(WORKLOADS), default=list(WORKLOADS),
                   help=f"comma-separated, of {', '.join(WORKLOADS)} (default all)")
    p.add_argument("--loads", type=impact.numbers(float, 1), default=None,
                   help="iperf3 at these percents of the capacity measured first, without "
                        "Beaver, in this run (e.g. 20,40,60,80; default: bulk only)")
    impact.add_instructions(p)


def family(workload: str) -> str:
    """iperf (bulk, or at a load) or ycsb (any letter)."""
    return "iperf" if workload.startswith("iperf") else "ycsb"


def settings(workload: str, beaver: bool, args, mbps: float | None) -> Workload:
    letter = workload.split("-", 1)[1] if family(workload) == "ycsb" else None
    return Workload(runtime_mode="beaver" if beaver else "off", iperf_seconds=args.seconds,
                    iperf_mbps=mbps,
                    app_args={"ycsb": ("--workload", letter.upper())} if letter else {})


def phase(results: Results, workload: str, round_no: int, kind: str, args,
          mbps: float | None = None) -> dict:
    beaver = kind not in (paired.BASELINE, "capacity")
    label = f"{workload.replace('@', '-at-').rstrip('%')}-{kind}-{round_no}"
    role = family(workload)
    with Run(SPEC, results.run_dir(label), settings(workload, beaver, args, mbps),
             marking=beaver, reports=not args.no_reports,
             pipeline=impact.pipeline_of(kind)) as run, flowmap.StatsOn():
        decaps = list(run.network.decaps.values())
        before = [(d.counters()["decapsulated"], *flowmap.run_stats(d.prog_id)) for d in decaps]
        impact.prepare_clocks(run, kind)
        meter = CpuMeter(run.parties())
        counting = time.monotonic()   # the clocks settled: the traffic's window, the meter's
        run.start_traffic(warmup=0.0, roles=(role,))
        placed = cores.apply(args.cores, switches=run.parties()["slb"])
        time.sleep(1.0)     # warm-up, placed; iperf omits that second
        started = time.monotonic()
        summary = None
        if (rate := impact.rate_of(kind)) is not None:
            summary = run.snapshots(impact.snapshot_settings(rate, args), collect=False)
        time.sleep(max(0.0, args.seconds - (time.monotonic() - started)))
        if role == "iperf":
            for name, proc in list(run.processes.running.items()):
                if name in run.network.plan.outgroup:
                    proc.wait(args.seconds + 10)
        run.stop_traffic()
        cpu, stolen = meter.read(), meter.stolen()
        counted_s = time.monotonic() - counting
        after = [(d.counters()["decapsulated"], *flowmap.run_stats(d.prog_id)) for d in decaps]
        counters = [d.counters() for d in decaps]
        if summary:   # the records are built for the count, not measured
            run.collect(summary)
    decapsulated, decap_ns, decap_runs = (sum(a[i] - b[i] for a, b in zip(after, before))
                                          for i in range(3))
    clients = [s for n, s in run.processes.summaries.items() if n in run.network.plan.outgroup]
    errors = [c["error"] for c in clients if "error" in c]
    if errors:
        raise RuntimeError(f"{label}: {'; '.join(map(str, errors))}")
    requests = decapsulated if role == "iperf" else sum(c["replies"] for c in clients)
    cpu["decap"] = decap_ns / 1e9
    row = {"phase": label, "workload": workload, "round": round_no, "kind": kind,
           "offered_mbps": round(mbps, 1) if mbps else "",
           "snapshots": len(run.records),
           "threads_on_traffic_core": placed.get("traffic", ""),
           "snapshot_rate": round(summary.rate, 1) if summary else 0.0,
           "decapsulated": decapsulated,
           "counted_s": round(counted_s, 3),   # the traffic's seconds, the CPU meter's
           "foreign_or_malformed": sum(c["foreign"] + c["malformed"] for c in counters),
           "requests": requests,
           "reports_asked": summary.reports_asked if summary else 0,
           "reasked": summary.reasked if summary else 0, paired.STEAL: round(stolen * 100, 2),
           "decap_ns_per_packet": round(decap_ns / max(1, decap_runs), 1),
           **{paired.COST + party: round(seconds * 1e6 / max(1, requests), 2)
              for party, seconds in cpu.items()}}
    if role == "iperf":
        row.update(throughput_mbps=sum(c["throughput_mbps"] for c in clients),
                   rtt_mean_us=statistics.mean(c["rtt_mean_us"] for c in clients),
                   retransmits=sum(c["retransmits"] for c in clients))
        text = (f"{row['throughput_mbps']:.1f} Mbit/s, RTT {row['rtt_mean_us']:.0f} us, "
                f"{row['retransmits']} retransmits")
    else:
        row.update(throughput=round(sum(c["throughput"] for c in clients), 1),
                   p50_us=statistics.mean(c["latency_p50_us"] for c in clients),
                   p99_us=statistics.mean(c["latency_p99_us"] for c in clients),
                   timeouts=sum(c["timeouts"] for c in clients))
        text = f"{row['throughput']:.0f} replies/s, p99 {row['p99_us']:.0f} us"
    per = JUDGED[role][2]
    results.progress(f"{label}: {text}, {row['snapshots']} snapshots "
                     f"({row['snapshot_rate']}/s, {row['reports_asked']} reports asked, "
                     f"{row['reasked']} of them again); CPU us/{per} "
                     + ", ".join(f"{p} {row[paired.COST + p]}" for p in cpu)
                     + f"; decap {row['decap_ns_per_packet']} ns/packet; steal "
                     f"{row[paired.STEAL]} %")
    return row


def offered(args, results: Results) -> dict[str, float | None]:
    """Each workload run, and its iperf3 offered load (None: bulk or YCSB)."""
    loads: dict[str, float | None] = {}
    for workload in args.workloads:
        if workload != "iperf" or not args.loads:
            loads[workload] = None
            continue
        capacity = phase(results, "iperf", 0, "capacity", args)["throughput_mbps"]
        results.progress(f"capacity without Beaver: {capacity:.1f} Mbit/s")
        for load in args.loads:
            loads[f"iperf@{load:g}%"] = capacity * load / 100
    return loads


def beaver_servers(workload: str) -> int:
    """The Beaver processes that serve a workload's requests: the key-value
    store's replicas (YCSB-like); none for iperf3."""
    app = "iperf" if family(workload) == "iperf" else "kv"
    return sum(s.replicas for s in SPEC.services if s.app == app and s.in_snapshots)


def attributors(args) -> dict:
    """With --instructions, each workload family's attributor
    (impact.attributor), every phase checked now: a file that lacks what
    one needs fails before the run, in one line."""
    return {role: impact.attributor(args, SPEC.slbs, beaver_servers(role), JUDGED[role][2],
                                    INGROUP_COUNTED[role])
            for role in dict.fromkeys(family(w) for w in args.workloads)}


def at_measured_rates(attribute, rows: list[dict]):
    """attribute, asked of a phase at its own requests (iperf3: packets) per
    second and packets through an SLB per request (medians of its rounds),
    not at the judged throughput (iperf3's is in Mbit/s)."""
    if attribute is None:
        return None

    def ask(kind: str, _throughput: float) -> str:
        mine = [r for r in rows if r["kind"] == kind]
        per_second = statistics.median(r["requests"] / r["counted_s"] for r in mine)
        packets = statistics.median(r["decapsulated"] / max(1, r["requests"]) for r in mine)
        try:
            return attribute(kind, per_second, packets)
        except InstructionsError as e:   # the summary keeps the measured rows' verdicts
            return f"instructions: {e}"
    return ask


def run(args, results: Results) -> list[dict]:
    results.progress(f"cores {cores.describe(args.cores)}")
    attributes = attributors(args)
    rows = [phase(results, workload, n, kind, args, mbps)
            for workload, mbps in offered(args, results).items()
            for n, kind in paired.rounds(impact.phases(args.rates), args.rounds)]
    results.write_csv(rows)
    summary = summarize(rows, args, attributes)
    plot(results, rows, list(dict.fromkeys(r["workload"] for r in rows)), args)
    return summary


def summarize(rows: list[dict], args, attributes: dict) -> list[dict]:
    """One row per workload and phase with a goal (paired.judge), and with
    --instructions, where they come from and what the in-group's hold."""
    summary = []
    for workload in dict.fromkeys(r["workload"] for r in rows):
        mine = [r for r in rows if r["workload"] == workload]
        role = family(workload)
        throughput, latency, per = JUDGED[role]
        goals = impact.goals(args.rates, p99=role == "ycsb")
        counted = ({"instructions": f"{impact.counted_by(args)}; {INGROUP_COUNTED[role]}"}
                   if args.instructions else {})
        for row in paired.judge(mine, throughput, latency, goals, per,
                                cores.apart(args.cores),
                                at_measured_rates(attributes[role], mine)):
            ns = {kind: statistics.median(r["decap_ns_per_packet"] for r in mine
                                          if r["kind"] == kind)
                  for kind in (row["phase"], paired.BASELINE)}
            row = {("latency" if k == latency else k): v for k, v in row.items()}
            extra = {}
            if role == "iperf":
                extra["retransmits"] = " vs ".join(
                    f"{statistics.median(r['retransmits'] for r in mine if r['kind'] == k):g}"
                    for k in (row["phase"], paired.BASELINE))
            summary.append({"workload": workload, **row, "latency is": latency, **extra,
                            "decap ns/packet": f"{ns[row['phase']]:.0f} vs "
                                               f"{ns[paired.BASELINE]:.0f}",
                            "cores": args.cores, **counted})
    return summary


def plot(results: Results, rows: list[dict], workloads: list[str], args):
    fig, axes = results.figure(2 * len(workloads))
    for i, workload in enumerate(workloads):
        role = family(workload)
        paired.draw(axes[2 * i], axes[2 * i + 1], [r for r in rows if r["workload"] == workload],
                    PLOTTED[role], impact.goals(args.rates, p99=role == "ycsb"), JUDGED[role][2],
                    f"Fig. 14 over TCP: {workload} ({args.cores})")
    results.save_figure(fig)
