"""Table 3: detecting anomalous access (bots) from snapshots, with Beaver,
Lai-Yang and polling, at several fractions of bots.

Users log in at the key-value store (behind bvs1) before every bank request
(behind bvs2); bots go at the bank first (traffic/outgroup/bots.py).  On each
accepted snapshot the detector flags users with more bank requests than
logins, and is scored against who really is a bot (TP/FP/TN/FN per user per
snapshot).  Its verdicts are exact on consistent cuts, so every FP and FN
comes from an inconsistent one.

  beaver    OGM, fine rule at tau (default: this network's tau_min measured
            first); the in-group runtime in Beaver mode
  lai-yang  no slbs: processes initiated out of band, marks ignored
  polling   each process snapshots on its own timer

--lag-ms makes the bank's side learn of each snapshot late (its SLB for
Beaver, its processes for Lai-Yang), as in a larger deployment.
"""
from __future__ import annotations

from collections import Counter

from beaver.control.engine import rules
from beaver.control.engine.engine import RunSettings
from beaver.control.engine.record import Mode, Outcome
from beaver.traffic.analysis.anomaly import detect, score

from beaver.topologies.processes import Workload
from beaver.topologies.spec import Plan, Service, Spec
from beaver.topologies.experiments import fig12
from beaver.topologies.experiments.common.phase import snapshot_phase
from beaver.topologies.experiments.common.results import Results

BANK_SLB = "bvs2"
BANK_PROCESSES = ("bvi3", "bvi4")


def add_arguments(p):
    p.add_argument("--users", type=int, default=20, help="users, bots included (default 20)")
    p.add_argument("--bots", default="0,5,10", help="bot percentages (default 0,5,10)")
    p.add_argument("--count", type=int, default=30, help="snapshots per cell (default 30)")
    p.add_argument("--rate", type=float, default=5.0, help="snapshots per second (default 5)")
    p.add_argument("--lag-ms", type=float, default=0.0,
                   help="initiation lag of the bank's side (default 0)")
    p.add_argument("--tau-us", type=int, default=None,
                   help="Beaver's tau (default: half of tau_min, measured first)")


def spec(users: int, bots: int) -> Spec:
    return Spec(slbs=2, services=(Service("kv", "kv", 2, 7000), Service("bank", "bank", 2, 7100)),
                outgroup=("bot",) * bots + ("human",) * (users - bots), assignment="per-vip")


def settings(mode: str, args, tau: int) -> tuple[Workload, RunSettings]:
    lag = int(args.lag_ms * 1000)
    common = dict(count=args.count, rate=args.rate)
    if mode == "beaver":
        return Workload(), RunSettings(Mode.OGM, rules.FINE, tau, retake=3,
                                       delays_us={BANK_SLB: lag} if lag else {}, **common)
    if mode == "lai-yang":
        return (Workload(runtime_mode="lai-yang"),
                RunSettings(Mode.LAI_YANG, delays_us=dict.fromkeys(BANK_PROCESSES, lag)
                            if lag else {}, **common))
    return (Workload(runtime_mode="polling", poll_interval=1 / args.rate),
            RunSettings(Mode.POLLING, **common))


def run(args, results: Results) -> list[dict]:
    tau = fig12.tau_or_measured(results, args.tau_us)
    summary, rows = [], []
    for percent in [float(b) for b in args.bots.split(",")]:
        bots = round(args.users * percent / 100)
        network = spec(args.users, bots)
        for mode in ("beaver", "lai-yang", "polling"):
            workload, run_settings = settings(mode, args, tau)
            label = f"{mode}-{percent:g}pct"
            phase = snapshot_phase(results, label, network, run_settings, workload,
                                   bots_pct=percent)
            bots_named = {n for n, (role, _) in Plan.of(network).outgroup.items()
                          if role == "bot"}
            cell = Counter()
            scores = {}
            for record in phase.records:
                if record.verdict.outcome is Outcome.ACCEPTED:
                    states = {p: rep.local_state for p, rep in record.reports.items()}
                    scores[record.number] = score(detect(states), bots_named)
                    cell.update(scores[record.number])
            for row in phase.rows:
                row.update(scores.get(row["number"], {}))
            rows += phase.rows
            summary.append({"mode": mode, "bots_pct": percent, "bots": bots,
                            **{k: phase.tally[k] for k in CHECKER_COUNTS},
                            **{k: cell[k] for k in ("tp", "fp", "tn", "fn")}})
            results.progress(f"{label}: " + ", ".join(f"{k}={cell[k]}"
                                                      for k in ("tp", "fp", "tn", "fn")))
    results.write_csv(rows, "table3-snapshots")
    results.write_csv(summary)
    plot(results, summary)
    return summary


CHECKER_COUNTS = ("accepted", "consistent", "inconsistent", "unjudged", "channel_errors",
                  "false_accepts", "short_logs", "shortest_chain_us", "chains_under_tau")


def plot(results: Results, summary: list[dict]):
    fig, ax = results.figure()
    labels = [f"{r['mode']}\n{r['bots_pct']:g}%\nunj. {r['unjudged']}\nch.e. {r['channel_errors']}"
              for r in summary]
    bottom = [0] * len(summary)
    for key, color in (("tp", "tab:green"), ("tn", "tab:olive"), ("fp", "tab:red"),
                       ("fn", "tab:orange")):
        values = [r[key] for r in summary]
        ax.bar(labels, values, bottom=bottom, color=color, label=key.upper())
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("user verdicts over accepted snapshots")
    ax.set_title("Table 3: bot detection")
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=8)
    results.save_figure(fig)
