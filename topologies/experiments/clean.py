"""A clean run: traffic through every SLB (clients and relays), OGM
snapshots at tau = tau_min with every in-group report (timed initiation
unless --initiation says otherwise), and the checker over all of it.
Beaver must accept no snapshot the checker does not prove consistent (no
false accept: outcomes.py)."""
from __future__ import annotations

from beaver.control.engine import rules
from beaver.control.engine.engine import IMMEDIATE, TIMED, RunSettings
from beaver.control.engine.record import Mode

from beaver.topologies.spec import Service, Spec
from beaver.topologies.experiments import fig12
from beaver.topologies.experiments.common.phase import snapshot_phase
from beaver.topologies.experiments.common.results import Results


def add_arguments(p, slbs: int = 2, ingroup: int = 4, outgroup: int = 4, count: int = 30):
    p.add_argument("--slbs", type=int, default=slbs, help=f"|G| (default {slbs})")
    p.add_argument("--ingroup", type=int, default=ingroup,
                   help=f"in-group hosts, half key-value, half bank (default {ingroup})")
    p.add_argument("--outgroup", type=int, default=outgroup,
                   help=f"out-group hosts, clients and relays (default {outgroup})")
    p.add_argument("--count", type=int, default=count, help=f"snapshots (default {count})")
    p.add_argument("--rate", type=float, default=10.0, help="snapshots per second (default 10)")
    p.add_argument("--tau-us", type=int, default=None,
                   help="tau (default: half of tau_min, measured first)")
    p.add_argument("--initiation", choices=(IMMEDIATE, TIMED), default=TIMED,
                   help=f"OGM initiation (default {TIMED})")


def spec(slbs: int, ingroup: int, outgroup: int) -> Spec:
    kv = max(1, ingroup // 2)
    roles = ("client-kv", "client-bank", "relay")
    return Spec(slbs=slbs, services=(Service("kv", "kv", kv, 7000),
                                     Service("bank", "bank", max(1, ingroup - kv), 7100)),
                outgroup=tuple(roles[i % len(roles)] for i in range(outgroup)),
                assignment="ecmp")


def run(args, results: Results) -> list[dict]:
    tau = fig12.tau_or_measured(results, args.tau_us)
    settings = RunSettings(Mode.OGM, rules.FINE, tau, count=args.count, rate=args.rate,
                           inflight=4, retake=2, initiation=args.initiation)
    phase = snapshot_phase(results, "run", spec(args.slbs, args.ingroup, args.outgroup), settings)
    results.write_csv(phase.rows)
    return [{"slbs": args.slbs, "ingroup": args.ingroup, "outgroup": args.outgroup,
             "tau_us": tau, "initiation": args.initiation,
             **phase.tally}]
