"""The seed's Figure 5 case over TCP: relays put into one TCP key-value
store (VIP behind bvs1) and, on each reply, get from a second one (behind
bvs2); YCSB-like clients load the first.  The kernel program strips the
MARKs on every in-group host (topologies/decap.py).

  tau-min         a first network: tau_min of this TCP network, the shortest
                  external causal chain in its logs (unless --tau-us)
  beaver-fine     OGM, fine rule, timed initiation; bvs2 learns of each
                  snapshot `delay` late: must reject
  lai-yang        no slbs; the second store's processes initiated
                  `delay` late: accepts, and the checker finds the cuts
                  inconsistent
  beaver-on-time  the clean run: OGM, fine rule, timed initiation, no delay:
                  Beaver may accept only cuts the checker proves consistent

The checker judges every cut from the logs, whatever the verdict.
"""
from __future__ import annotations

import time

from beaver.control.engine.engine import TIMED, RunSettings
from beaver.control.engine.record import Mode
from beaver.traffic.analysis.checker import Trace

from beaver.topologies.experiment import Run
from beaver.topologies.processes import Workload
from beaver.topologies.spec import Service, Spec
from beaver.topologies.experiments import fig12
from beaver.topologies.experiments.fig5 import plot
from beaver.topologies.experiments.common.phase import snapshot_phase
from beaver.topologies.experiments.common.results import Results

SPEC = Spec(slbs=2, services=(Service("kv", "kv", 2, 7000, "tcp"),
                              Service("store", "kv", 2, 7100, "tcp")),
            outgroup=("relay-tcp", "relay-tcp", "ycsb"), assignment="per-vip")
LATE_SLB = "bvs2"                  # per-VIP assignment: the second VIP, the second SLB
LATE_PROCESSES = ("bvi3", "bvi4")  # the second store's replicas


def add_arguments(p):
    p.add_argument("--delay-ms", type=float, default=30.0,
                   help="how late the second store's SLB (or, for Lai-Yang, its processes) "
                        "learns of each snapshot (default 30)")
    p.add_argument("--tau-us", type=int, default=None,
                   help="tau (default: half of tau_min of this TCP network, measured first)")
    p.add_argument("--count", type=int, default=20, help="snapshots per phase (default 20)")
    p.add_argument("--clean-count", type=int, default=30,
                   help="snapshots of the on-time (clean) phase (default 30)")
    p.add_argument("--rate", type=float, default=5.0, help="snapshots per second (default 5)")


def tau_min(results: Results, seconds: float = 3.0) -> int:
    """The tau to assume: fig12.TAU_SHARE of the shortest external causal
    chain on this network, from its logs."""
    with Run(SPEC, results.run_dir("tau-min"), Workload()) as run:
        run.start_traffic(warmup=0.5)
        time.sleep(seconds)
        run.stop_traffic()
    chains = Trace.load(run.processes.log_paths()).chains
    if not chains:
        raise RuntimeError("tau-min: no external causal chain completed: see out/*.err")
    shortest = min(chain.latency_us for chain in chains)
    tau = fig12.assumed_tau(shortest)
    results.progress(f"tau = {tau} us, {fig12.TAU_SHARE:g} of tau_min = {shortest} us "
                     f"({len(chains)} chains)")
    return tau


def run(args, results: Results) -> list[dict]:
    tau = args.tau_us if args.tau_us is not None else tau_min(results)
    delay = int(args.delay_ms * 1000)
    common = dict(tau_us=tau, count=args.count, rate=args.rate)
    ogm = dict(common, initiation=TIMED)
    phases = [
        ("beaver-fine", Workload(), RunSettings(
            Mode.OGM, "fine", delays_us={LATE_SLB: delay}, lead_us=max(1, delay // 10), **ogm)),
        ("lai-yang", Workload(runtime_mode="lai-yang"), RunSettings(
            Mode.LAI_YANG, delays_us=dict.fromkeys(LATE_PROCESSES, delay), **common)),
        ("beaver-on-time", Workload(), RunSettings(
            Mode.OGM, "fine", **dict(ogm, count=args.clean_count))),
    ]
    summary, rows = [], []
    for label, workload, settings in phases:
        phase = snapshot_phase(results, label, SPEC, settings, workload, delay_ms=args.delay_ms)
        summary.append({"phase": label, "tau_us": tau, **phase.tally})
        rows += phase.rows
    results.write_csv(rows)
    plot(results, rows)
    return summary
