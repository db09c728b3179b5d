"""Integration testing: the bank's and the key-value store's invariants
(traffic/analysis/invariants.py) checked on every accepted snapshot, of a correct
system and of one with injected bugs (a bank shard that loses one credit in
N, a replica that drops one replication update in M), with Beaver, Lai-Yang
and polling (methods.py).

Ground truth: the bugs' own record in the applications' states (faults_at)
says, per snapshot, whether a broken invariant's cause is in the cut.  An
alarm without one is a false alarm; a fault in the cut without an alarm is a
miss.  On a consistent cut neither can happen.  Lai-Yang initiates the
key-value store late, so its cuts can hold an audit the third party wrote
for a transfer they do not hold.
"""
from __future__ import annotations

from collections import Counter

from beaver.traffic.analysis.invariants import INVARIANTS, check, faults_at

from beaver.topologies.processes import Workload
from beaver.topologies.spec import Service, Spec
from beaver.topologies.experiments.common import methods
from beaver.topologies.experiments.common.results import Results

ACCOUNTS, INITIAL = 100, 1000
OPENING_TOTAL = ACCOUNTS * INITIAL
SYSTEMS = ("correct", "faulty")


def add_arguments(p):
    methods.add_arguments(p)
    # Rare enough that the first fault comes during the series, not before it.
    p.add_argument("--lose-every", type=int, default=1000,
                   help="faulty system: a bank shard loses one credit in N (default 1000)")
    p.add_argument("--drop-every", type=int, default=2000,
                   help="faulty system: a replica drops one update in M (default 2000)")
    p.add_argument("--systems", type=methods.some_of(SYSTEMS), default=list(SYSTEMS),
                   help="which of correct,faulty to run (default both)")


def spec() -> Spec:
    return Spec(slbs=2, services=(Service("kv", "kv", 2, 7000), Service("bank", "bank", 2, 7100)),
                outgroup=("client-kv", "client-kv", "client-bank", "client-bank", "thirdparty"),
                assignment="per-client")


def workload(system: str, args) -> Workload:
    bank = ("--accounts", str(ACCOUNTS), "--initial", str(INITIAL))
    if system == "correct":
        return Workload(app_args={"bank": bank})
    return Workload(app_args={"bank": bank + ("--lose-every", str(args.lose_every)),
                              "kv": ("--drop-every", str(args.drop_every))})


def judge(reports) -> dict:
    """One snapshot: per invariant, whether it alarmed and whether a fault
    was in the cut."""
    violations, faults = check(reports, OPENING_TOTAL), faults_at(reports)
    row = {}
    for name in INVARIANTS:
        row[f"{name}_alarm"] = bool(violations[name])
        row[f"{name}_fault"] = faults[name]
        row[f"{name}_first"] = violations[name][0] if violations[name] else ""
    return row


def score(judged: list[tuple[float, dict]]) -> dict:
    """Over (seconds into the series, judge row) of the accepted snapshots."""
    counts = Counter()
    first_fault = first_caught = None
    for at, row in judged:
        counts["fault_snapshots"] += any(row[f"{n}_fault"] > 0 for n in INVARIANTS)
        for name in INVARIANTS:
            alarm, fault = row[f"{name}_alarm"], row[f"{name}_fault"] > 0
            if alarm and not fault:
                counts["false_alarms"] += 1
                counts[f"false_{name}"] += 1
            elif alarm:
                counts["caught"] += 1
                first_caught = at if first_caught is None else first_caught
            elif fault:
                counts["missed"] += 1
            if fault and first_fault is None:
                first_fault = at
    return {"false_alarms": counts["false_alarms"],
            **{f"false_{n}": counts[f"false_{n}"] for n in INVARIANTS},
            "fault_snapshots": counts["fault_snapshots"],
            "caught": counts["caught"], "missed": counts["missed"],
            "first_fault_s": first_fault, "first_caught_s": first_caught}


def run(args, results: Results) -> list[dict]:
    tau = methods.tau(args, results)
    summary, rows = [], []
    for system in args.systems:
        phases = methods.run_methods(args, results, spec(), tau,
                                     methods.processes_of(spec(), "kv"),
                                     workload(system, args), label=system)
        for method, phase in phases.items():
            accepted = methods.accepted(phase)
            start = min((r.wall_time for r in phase.records), default=0.0)
            judged = {r.number: (round(r.wall_time - start, 3), judge(r.reports))
                      for r in accepted}
            for row in phase.rows:
                row.update(judged.get(row["number"], (None, {}))[1])
            rows += phase.rows
            summary.append({"system": system, "method": method,
                            **score(list(judged.values())), **methods.checker_counts(phase)})
            results.progress(f"{method}-{system}: " + ", ".join(
                f"{k}={summary[-1][k]}" for k in ("false_alarms", "caught", "missed")))
    results.write_csv(rows, "invariants-snapshots")
    results.write_csv(summary)
    plot(results, summary)
    return summary


def plot(results: Results, summary: list[dict]):
    fig, ax = results.figure()
    labels = [f"{r['method']}\n{r['system']}\nacc. {r['accepted']}" for r in summary]
    bottom = [0] * len(summary)
    for key, color, name in (("caught", "tab:green", "bug caught"),
                             ("false_alarms", "tab:red", "false alarm"),
                             ("missed", "tab:orange", "bug missed")):
        values = [r[key] for r in summary]
        ax.bar(labels, values, bottom=bottom, color=color, label=name)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("invariant verdicts over accepted snapshots")
    ax.set_title("Integration testing: invariants on every snapshot")
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=8)
    results.save_figure(fig)
